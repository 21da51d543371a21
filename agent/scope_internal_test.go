package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/spdk"
)

type epochCaller struct{ epoch uint64 }

func (e *epochCaller) Call(context.Context, string, any, any) error { return nil }
func (e *epochCaller) Epoch() uint64                                { return e.epoch }

// TestScopedDecision: when a reconcile may observe only what changed, and
// when it must list everything.
func TestScopedDecision(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// A remembered node of 20 objects; the scope names 2.
	big := &Actual{Bdevs: map[string]spdk.Bdev{}, Ctrlrs: map[string]spdk.NvmeController{}, Subsystems: map[string]spdk.Subsystem{}}
	for i := range 20 {
		big.Bdevs[string(rune('a'+i))] = spdk.Bdev{}
	}
	small := func() *scope { s := newScope(); s.ctrlr("vda-vdc-x"); return s }
	for _, tc := range []struct {
		name    string
		mem     memory
		gen     uint64
		epoch   uint64
		now     time.Time
		relist  time.Duration
		sc      *scope
		pending *scope
		want    bool
	}{
		{name: "scoped", mem: memory{act: big, gen: 1, epoch: 3, listed: t0}, gen: 2, epoch: 3, now: t0.Add(time.Minute), sc: small(), want: true},
		{name: "nothing remembered", mem: memory{}, gen: 2, epoch: 3, now: t0, sc: small()},
		{name: "node changed", mem: memory{act: big, gen: 1, epoch: 3, listed: t0}, gen: 2, epoch: 3, now: t0},
		{name: "same generation: repair", mem: memory{act: big, gen: 2, epoch: 3, listed: t0}, gen: 2, epoch: 3, now: t0, sc: small()},
		{name: "socket dialled again", mem: memory{act: big, gen: 1, epoch: 3, listed: t0}, gen: 2, epoch: 4, now: t0, sc: small()},
		{name: "relist due", mem: memory{act: big, gen: 1, epoch: 3, listed: t0}, gen: 2, epoch: 3, now: t0.Add(5 * time.Minute), sc: small()},
		{name: "relist every time", mem: memory{act: big, gen: 1, epoch: 3, listed: t0}, gen: 2, epoch: 3, now: t0, relist: -1, sc: small()},
		{name: "too much changed", mem: memory{act: big, gen: 1, epoch: 3, listed: t0, pending: func() *scope {
			s := newScope()
			for i := range 5 {
				s.ctrlr(string(rune('p' + i)))
			}
			return s
		}()}, gen: 2, epoch: 3, now: t0, sc: small()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ec := &epochCaller{epoch: tc.epoch}
			c, err := newCore(Config{SPDK: ec, Now: func() time.Time { return tc.now }, RelistAfter: tc.relist}, true)
			require.NoError(t, err)
			c.mem = tc.mem
			got := c.scoped(tc.sc, tc.gen)
			assert.Equal(t, tc.want, got != nil)
		})
	}
}

// TestScopeOfChange: the objects a change of desired state puts in scope.
func TestScopeOfChange(t *testing.T) {
	l := Listener{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4420"}
	c1 := Cntlr{ID: "c1", DA: "da1", StripSizeKB: 64, HostNQNs: []string{"h1"}, Primary: &Primary{VDs: []VDPath{{ID: "vd1", Listener: l}}}}
	c2 := Cntlr{ID: "c2", DA: "da2", Secondary: &Secondary{Primary: "c9", Listener: l}}
	c1h := c1
	c1h.HostNQNs = []string{"h1", "h2"}
	base := CN{ID: "cn1", Listener: l, Cntlrs: []Cntlr{c1, c2}}

	sc := cnScope(base, CN{ID: "cn1", Listener: l, Cntlrs: []Cntlr{c1h, c2}})
	require.NotNil(t, sc)
	assert.Equal(t, map[string]bool{"nqn.2016-06.io.vda:da-da1": true}, sc.subsystems)
	assert.Equal(t, map[string]bool{"vda-raid-da1": true}, sc.raids)
	assert.Equal(t, map[string]bool{"vda-vdc-vd1": true}, sc.ctrlrs)
	assert.Equal(t, map[string]bool{"vda-raid-da1": true, "vda-vdc-vd1n1": true}, sc.bdevs)

	sc = cnScope(base, CN{ID: "cn1", Listener: l, Cntlrs: []Cntlr{c1}})
	assert.Equal(t, map[string]bool{"nqn.2016-06.io.vda:da-da2": true}, sc.subsystems, "a removed controller")
	assert.Equal(t, map[string]bool{"vda-pri-c9": true}, sc.ctrlrs)

	assert.Nil(t, cnScope(base, CN{ID: "cn1", Listener: Listener{Trtype: "TCP", Trsvcid: "1"}}), "the node's listener moved")

	pd := PD{ID: "pd1", Kind: PDMalloc, Size: 1 << 30, VDs: []VD{{ID: "vd1", Size: 1 << 22, Primary: "c1"}}}
	dn := DN{ID: "dn1", Listener: l, PDs: []PD{pd}}
	moved := pd
	moved.VDs = []VD{{ID: "vd1", Size: 1 << 22, Primary: "c2"}}
	sc = dnScope(dn, DN{ID: "dn1", Listener: l, PDs: []PD{moved}})
	require.NotNil(t, sc)
	assert.Equal(t, map[string]bool{"nqn.2016-06.io.vda:vd-vd1": true}, sc.subsystems, "the fence moved")
	assert.Equal(t, map[string]bool{"vda-lvs-pd1/vda-vd-vd1": true}, sc.bdevs)
	grown := pd
	grown.Size *= 2
	assert.Nil(t, dnScope(dn, DN{ID: "dn1", Listener: l, PDs: []PD{grown}}), "a pd changed")
}
