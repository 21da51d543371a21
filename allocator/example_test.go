package allocator_test

import (
	"errors"
	"fmt"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/allocator"
)

// Three vds of 10 GiB over two racks: the first goes to the pd with the most
// free space, the second to the other rack, the third back to the first
// rack, on a dn not used yet. dn1's second pd and the offline dn4 get none.
// The caller then debits each pick's free space in the same store
// transaction that records the placement.
func ExamplePlaceVDs() {
	pds := []allocator.PD{
		{ID: "pd1", DN: "dn1", Location: "rack1", Online: true, Free: 500 * vda.GiB},
		{ID: "pd2", DN: "dn1", Location: "rack1", Online: true, Free: 400 * vda.GiB},
		{ID: "pd3", DN: "dn2", Location: "rack1", Online: true, Free: 300 * vda.GiB},
		{ID: "pd4", DN: "dn3", Location: "rack2", Online: true, Free: 100 * vda.GiB},
		{ID: "pd5", DN: "dn4", Location: "rack2", Online: false, Free: 900 * vda.GiB},
	}
	picks, err := allocator.PlaceVDs(pds, 3, 10*vda.GiB)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, pd := range picks {
		fmt.Printf("vd %d: %s on %s in %s\n", i, pd.ID, pd.DN, pd.Location)
	}

	// A fourth vd would need a fourth dn with room.
	_, err = allocator.PlaceVDs(pds, 4, 10*vda.GiB)
	fmt.Println(errors.Is(err, vda.ErrNoCapacity))
	fmt.Println(err)
	// Output:
	// vd 0: pd1 on dn1 in rack1
	// vd 1: pd4 on dn3 in rack2
	// vd 2: pd3 on dn2 in rack1
	// true
	// no capacity: need 4 vds of 10.0 GiB on distinct dns, found 3 eligible dns (5 pds: 1 offline)
}

// Two controllers: the primary on the least-loaded cn, the secondary in
// another location even though cn2 there is busier than cn3.
func ExamplePlaceCntlrs() {
	cns := []allocator.CN{
		{ID: "cn1", Location: "rack1", Online: true, Load: 4},
		{ID: "cn2", Location: "rack2", Online: true, Load: 6},
		{ID: "cn3", Location: "rack1", Online: true, Load: 1},
	}
	picks, err := allocator.PlaceCntlrs(cns, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("primary:", picks[0].ID)
	fmt.Println("secondary:", picks[1].ID)
	// Output:
	// primary: cn3
	// secondary: cn2
}
