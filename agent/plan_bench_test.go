package agent

import (
	"fmt"
	"testing"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/spdk"
)

// convergedCN builds the desired state of a cn with n primaries (2 vds
// each) and the observation of an SPDK that already holds all of it.
func convergedCN(n int) (CN, *Actual) {
	l := Listener{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4430"}
	dl := Listener{Trtype: "TCP", Adrfam: "IPv4", Traddr: "127.0.0.1", Trsvcid: "4420"}
	c := CN{ID: "cn1", Generation: 1, Listener: l}
	a := &Actual{Bdevs: map[string]spdk.Bdev{}, Names: map[string]string{}, Ctrlrs: map[string]spdk.NvmeController{},
		Raids: map[string]spdk.RaidBdev{}, Transports: map[string]bool{"TCP": true}, Subsystems: map[string]spdk.Subsystem{}, ANA: map[string]string{}}
	bdev := func(name string) { a.Bdevs[name] = spdk.Bdev{Name: name}; a.Names[name] = name }
	host := "nqn.2014-08.org.example:host1"
	for i := range n {
		ct := Cntlr{ID: vda.CntlrID(fmt.Sprintf("c%d", i)), DA: vda.DAID(fmt.Sprintf("da%d", i)), StripSizeKB: 64, HostNQNs: []string{host}, Primary: &Primary{}}
		var members []spdk.RaidBase
		for j := range 2 {
			id := vda.VDID(fmt.Sprintf("vd%d-%d", i, j))
			ct.Primary.VDs = append(ct.Primary.VDs, VDPath{ID: id, Listener: dl})
			name := vda.VDCtrlrName(id)
			a.Ctrlrs[name] = spdk.NvmeController{Name: name, Ctrlrs: []spdk.NvmeCtrlr{{State: spdk.NvmeCtrlrEnabled,
				Trid: spdk.NvmeTrid{Trtype: "TCP", Adrfam: "IPv4", Traddr: dl.Traddr, Trsvcid: dl.Trsvcid, Subnqn: vda.VDNQN(id)},
				Host: spdk.NvmeCtrlrHost{NQN: vda.CntlrHostNQN(ct.ID)}}}}
			bdev(name + "n1")
			m := name + "n1"
			members = append(members, spdk.RaidBase{Name: &m})
		}
		raid := vda.RaidName(ct.DA)
		a.Raids[raid] = spdk.RaidBdev{Name: raid, RaidLevel: "raid0", StripSizeKB: 64, State: spdk.RaidOnline, BaseBdevsList: members}
		bdev(raid)
		nqn := vda.ArrayNQN(ct.DA)
		u := vda.ArrayNamespaceUUID(ct.DA)
		addr := l.listenAddress()
		a.Subsystems[nqn] = spdk.Subsystem{NQN: nqn, SerialNumber: vda.ArraySerial(ct.DA), ModelNumber: vda.ArrayModel,
			ListenAddresses: []spdk.ListenAddress{addr}, Hosts: []spdk.SubsystemHost{{NQN: host}},
			Namespaces: []spdk.Namespace{{NSID: 1, BdevName: raid, UUID: u, NGUID: vda.NGUID(u)}}}
		a.ANA[anaKey(nqn, addr)] = spdk.AnaOptimized
		c.Cntlrs = append(c.Cntlrs, ct)
	}
	return c, a
}

// BenchmarkPlanCN is the agent's own share of a cn syncup: planning over
// a node of n primaries after one array gained an exporter.
//
//	go test ./agent -run '^$' -bench PlanCN
func BenchmarkPlanCN(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("controllers=%d", n), func(b *testing.B) {
			c, a := convergedCN(n)
			if p := PlanCN(c, a, NvmeOptions{}); len(p.Steps) != 0 || len(p.Problems) != 0 {
				b.Fatalf("converged node plans %v %v", p.Steps, p.Problems)
			}
			c.Cntlrs[0].HostNQNs = append(c.Cntlrs[0].HostNQNs, "nqn.2014-08.org.example:host2")
			for b.Loop() {
				if p := PlanCN(c, a, NvmeOptions{}); len(p.Steps) != 1 {
					b.Fatalf("plan %v", p.Steps)
				}
			}
		})
	}
}
