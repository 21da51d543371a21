package agent_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"google.golang.org/protobuf/proto"
)

func wireListener(port string) *vdav1.NvmfListener {
	return &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: port}
}

func TestDNFromProto(t *testing.T) {
	good := &vdav1.DnDesired{DnId: "dn1", Generation: 3, Listener: wireListener("4420"), Pds: []*vdav1.PdDesired{
		{Id: "pd1", Backend: &vdav1.PdDesired_Malloc{Malloc: &vdav1.PdMalloc{Size: 64 << 20}},
			Vds: []*vdav1.VdDesired{{Id: "vd1", Size: 8 << 20, PrimaryCntlrId: "c1"}}},
		{Id: "pd2", Backend: &vdav1.PdDesired_Aio{Aio: &vdav1.PdAio{Path: "/dev/sdb"}}},
		{Id: "pd3", Backend: &vdav1.PdDesired_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: "0000:3b:00.0"}}},
	}}
	d, err := agent.DNFromProto(good)
	require.NoError(t, err)
	assert.Equal(t, agent.DN{ID: "dn1", Generation: 3, Listener: lis("4420"), PDs: []agent.PD{
		{ID: "pd1", Kind: agent.PDMalloc, Size: 64 << 20, VDs: []agent.VD{{ID: "vd1", Size: 8 << 20, Primary: "c1"}}},
		{ID: "pd2", Kind: agent.PDAio, Path: "/dev/sdb"},
		{ID: "pd3", Kind: agent.PDNvme, PCIeAddr: "0000:3b:00.0"},
	}}, d)

	tests := []struct {
		name   string
		change func(m *vdav1.DnDesired)
		want   []string
	}{
		{"nil", nil, []string{"desired state is missing"}},
		{"zero generation", func(m *vdav1.DnDesired) { m.Generation = 0 }, []string{"generation is 0"}},
		{"bad listener", func(m *vdav1.DnDesired) {
			m.Listener = &vdav1.NvmfListener{Trtype: "rdma", Adrfam: "ib", Traddr: "x", Trsvcid: "0"}
		},
			[]string{`listener.trtype "rdma" is not tcp`, `listener.adrfam "ib"`, `listener.traddr "x" is not an IP address`, `listener.trsvcid "0" is not a port`}},
		{"id that would break SPDK names", func(m *vdav1.DnDesired) { m.Pds[0].Id = "a/b" }, []string{"pds[0].id"}},
		{"duplicate vd", func(m *vdav1.DnDesired) {
			m.Pds[1].Vds = []*vdav1.VdDesired{{Id: "vd1", Size: 4 << 20, PrimaryCntlrId: "c1"}}
		}, []string{`pds[1].vds[0].id "vd1" appears twice`}},
		{"vd size not whole clusters", func(m *vdav1.DnDesired) { m.Pds[0].Vds[0].Size = 5 << 20 }, []string{"pds[0].vds[0].size 5242880 is not a positive multiple of 4.0 MiB"}},
		{"vd without fence", func(m *vdav1.DnDesired) { m.Pds[0].Vds[0].PrimaryCntlrId = "" }, []string{"pds[0].vds[0].primary_cntlr_id is empty"}},
		{"relative aio path", func(m *vdav1.DnDesired) { m.Pds[1].Backend = &vdav1.PdDesired_Aio{Aio: &vdav1.PdAio{Path: "disk.img"}} }, []string{`pds[1].aio.path "disk.img" is not absolute`}},
		{"no backend", func(m *vdav1.DnDesired) { m.Pds[2].Backend = nil }, []string{"pds[2] has no backend"}},
		{"odd malloc", func(m *vdav1.DnDesired) {
			m.Pds[0].Backend = &vdav1.PdDesired_Malloc{Malloc: &vdav1.PdMalloc{Size: 1000}}
		}, []string{"pds[0].malloc.size 1000"}},
		{"absurd malloc", func(m *vdav1.DnDesired) {
			m.Pds[0].Backend = &vdav1.PdDesired_Malloc{Malloc: &vdav1.PdMalloc{Size: 1 << 60}}
		}, []string{"pds[0].malloc.size 1152921504606846976 is above"}},
		{"absurd vd", func(m *vdav1.DnDesired) { m.Pds[0].Vds[0].Size = 1 << 60 }, []string{"pds[0].vds[0].size 1152921504606846976 is above"}},
		{"unclean aio path", func(m *vdav1.DnDesired) {
			m.Pds[1].Backend = &vdav1.PdDesired_Aio{Aio: &vdav1.PdAio{Path: "/dev/../etc/passwd"}}
		}, []string{`pds[1].aio.path "/dev/../etc/passwd" is not clean`}},
		{"aio path with newline", func(m *vdav1.DnDesired) {
			m.Pds[1].Backend = &vdav1.PdDesired_Aio{Aio: &vdav1.PdAio{Path: "/dev/sdb\n"}}
		}, []string{`pds[1].aio.path "/dev/sdb\n" has a NUL or newline`}},
		{"bad pcie address", func(m *vdav1.DnDesired) {
			m.Pds[2].Backend = &vdav1.PdDesired_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: "0000:3b:00.0 extra"}}
		}, []string{`pds[2].nvme.pcie_addr "0000:3b:00.0 extra" is not a PCIe address`}},
		{"family and address differ", func(m *vdav1.DnDesired) { m.Listener.Traddr = "::1" }, []string{`listener.traddr "::1" is not an IPv4 address`}},
		{"unspecified address", func(m *vdav1.DnDesired) { m.Listener.Traddr = "0.0.0.0" }, []string{`listener.traddr "0.0.0.0" is the unspecified address`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m *vdav1.DnDesired
			if tt.change != nil {
				m = proto.Clone(good).(*vdav1.DnDesired)
				tt.change(m)
			}
			_, err := agent.DNFromProto(m)
			require.ErrorIs(t, err, vda.ErrInvalidArgument)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestCNFromProto(t *testing.T) {
	good := &vdav1.CnDesired{CnId: "cn1", Generation: 2, Listener: wireListener("4430"), Cntlrs: []*vdav1.CntlrDesired{
		{Id: "c1", DaId: "da1", StripSizeKb: 64, HostNqns: []string{host1},
			Role: &vdav1.CntlrDesired_Primary{Primary: &vdav1.PrimaryDesired{
				Vds: []*vdav1.VdPath{{Id: "vd1", Listener: wireListener("4420")}}, SecondaryCntlrIds: []string{"c2"}}}},
		{Id: "c3", DaId: "da2", Role: &vdav1.CntlrDesired_Secondary{Secondary: &vdav1.SecondaryDesired{
			PrimaryCntlrId: "c4", PrimaryListener: wireListener("4440")}}},
	}}
	c, err := agent.CNFromProto(good)
	require.NoError(t, err)
	assert.Equal(t, agent.CN{ID: "cn1", Generation: 2, Listener: lis("4430"), Cntlrs: []agent.Cntlr{
		{ID: "c1", DA: "da1", StripSizeKB: 64, HostNQNs: []string{host1},
			Primary: &agent.Primary{VDs: []agent.VDPath{{ID: "vd1", Listener: lis("4420")}}, Secondaries: []vda.CntlrID{"c2"}}},
		{ID: "c3", DA: "da2", Secondary: &agent.Secondary{Primary: "c4", Listener: lis("4440")}},
	}}, c)

	tests := []struct {
		name   string
		change func(m *vdav1.CnDesired)
		want   []string
	}{
		{"bad host nqn", func(m *vdav1.CnDesired) { m.Cntlrs[0].HostNqns = []string{"host1", host1, host1} },
			[]string{"cntlrs[0].host_nqns[0]", `cntlrs[0].host_nqns[2] "` + host1 + `" appears twice`}},
		{"two controllers of one array", func(m *vdav1.CnDesired) { m.Cntlrs[1].DaId = "da1" }, []string{`cntlrs[1].da_id "da1" appears twice`}},
		{"primary without vds", func(m *vdav1.CnDesired) {
			m.Cntlrs[0].GetPrimary().Vds = nil
		}, []string{"cntlrs[0].primary.vds: 0 vds, want 1..64"}},
		{"bad strip", func(m *vdav1.CnDesired) { m.Cntlrs[0].StripSizeKb = 3 }, []string{"cntlrs[0].strip_size_kb 3 is not a power of two in 4..1024"}},
		{"own secondary", func(m *vdav1.CnDesired) { m.Cntlrs[0].GetPrimary().SecondaryCntlrIds = []string{"c1"} }, []string{`secondary_cntlr_ids[0] "c1" appears twice`}},
		{"secondary of itself", func(m *vdav1.CnDesired) { m.Cntlrs[1].GetSecondary().PrimaryCntlrId = "c3" }, []string{"cntlrs[1].secondary.primary_cntlr_id is the controller itself"}},
		{"no role", func(m *vdav1.CnDesired) { m.Cntlrs[1].Role = nil }, []string{"cntlrs[1] has no role"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := proto.Clone(good).(*vdav1.CnDesired)
			tt.change(m)
			_, err := agent.CNFromProto(m)
			require.ErrorIs(t, err, vda.ErrInvalidArgument)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
