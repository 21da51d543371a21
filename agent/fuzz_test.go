package agent_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/agent"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzDesired feeds the agent's desired-state validation arbitrary wire
// bytes: the first byte picks a dn's (even) or a cn's (odd) state, the
// rest is unmarshalled into it. Validation must never panic; a state it
// rejects must wrap vda.ErrInvalidArgument (and the agent then plans
// nothing); a state it accepts must hold to the rules the planner relies
// on, and planning it over an empty SPDK must not panic nor delete.
//
//	go test -run XXX -fuzz=FuzzDesired -fuzztime=20000x ./agent
func FuzzDesired(f *testing.F) {
	dn := &vdav1.DnDesired{DnId: "dn1", Generation: 3, Listener: wireListener("4420"), Pds: []*vdav1.PdDesired{
		{Id: "pd1", Backend: &vdav1.PdDesired_Malloc{Malloc: &vdav1.PdMalloc{Size: 64 << 20}},
			Vds: []*vdav1.VdDesired{{Id: "vd1", Size: 8 << 20, PrimaryCntlrId: "c1"}}},
		{Id: "pd2", Backend: &vdav1.PdDesired_Aio{Aio: &vdav1.PdAio{Path: "/dev/sdb"}}},
		{Id: "pd3", Backend: &vdav1.PdDesired_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: "0000:3b:00.0"}}},
	}}
	cn := &vdav1.CnDesired{CnId: "cn1", Generation: 2, Listener: wireListener("4430"), Cntlrs: []*vdav1.CntlrDesired{
		{Id: "c1", DaId: "da1", StripSizeKb: 64, HostNqns: []string{host1},
			Role: &vdav1.CntlrDesired_Primary{Primary: &vdav1.PrimaryDesired{
				Vds: []*vdav1.VdPath{{Id: "vd1", Listener: wireListener("4420")}}, SecondaryCntlrIds: []string{"c2"}}}},
		{Id: "c3", DaId: "da2", HostNqns: []string{host2}, Role: &vdav1.CntlrDesired_Secondary{Secondary: &vdav1.SecondaryDesired{
			PrimaryCntlrId: "c4", PrimaryListener: &vdav1.NvmfListener{Trtype: "TCP", Adrfam: "IPv6", Traddr: "fd00::1", Trsvcid: "4440"}}}},
	}}
	for _, seed := range []struct {
		kind byte
		m    proto.Message
	}{{0, dn}, {1, cn}, {0, &vdav1.DnDesired{}}, {1, &vdav1.CnDesired{}}} {
		b, err := proto.Marshal(seed.m)
		require.NoError(f, err)
		f.Add(append([]byte{seed.kind}, b...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		kind, data := data[0], data[1:]
		if kind%2 == 0 {
			var m vdav1.DnDesired
			if proto.Unmarshal(data, &m) != nil {
				return
			}
			d, err := agent.DNFromProto(&m)
			if err != nil {
				require.ErrorIs(t, err, vda.ErrInvalidArgument)
				return
			}
			checkDN(t, d)
			noDeletes(t, agent.PlanDN(d, emptyActual()))
			return
		}
		var m vdav1.CnDesired
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		c, err := agent.CNFromProto(&m)
		if err != nil {
			require.ErrorIs(t, err, vda.ErrInvalidArgument)
			return
		}
		checkCN(t, c)
		noDeletes(t, agent.PlanCN(c, emptyActual(), agent.NvmeOptions{}))
	})
}

func emptyActual() *agent.Actual { return &agent.Actual{} }

// checkDN holds an accepted dn state to what the planner relies on.
func checkDN(t *testing.T, d agent.DN) {
	require.NotZero(t, d.Generation)
	require.NoError(t, vda.ValidateName("dn", string(d.ID)))
	ids := map[string]bool{}
	for _, pd := range d.PDs {
		require.NoError(t, vda.ValidateName("pd", string(pd.ID)))
		require.False(t, ids["pd "+string(pd.ID)], "pd %s twice", pd.ID)
		ids["pd "+string(pd.ID)] = true
		switch pd.Kind {
		case agent.PDMalloc:
			require.True(t, pd.Size > 0 && pd.Size%vda.MiB == 0 && pd.Size <= vda.MaxArraySize, "malloc size %d", pd.Size)
		case agent.PDAio:
			require.True(t, strings.HasPrefix(pd.Path, "/") && !strings.ContainsAny(pd.Path, "\x00\n"), "aio path %q", pd.Path)
		case agent.PDNvme:
			require.Len(t, pd.PCIeAddr, len("0000:00:00.0"))
		default:
			t.Fatalf("pd %s of kind %q", pd.ID, pd.Kind)
		}
		for _, vd := range pd.VDs {
			require.NoError(t, vda.ValidateName("vd", string(vd.ID)))
			require.NoError(t, vda.ValidateName("primary", string(vd.Primary)))
			require.False(t, ids["vd "+string(vd.ID)], "vd %s twice", vd.ID)
			ids["vd "+string(vd.ID)] = true
			require.True(t, vd.Size > 0 && vd.Size%vda.ClusterSize == 0 && vd.Size <= vda.MaxArraySize, "vd size %d", vd.Size)
		}
	}
}

// checkCN holds an accepted cn state to what the planner relies on.
func checkCN(t *testing.T, c agent.CN) {
	require.NotZero(t, c.Generation)
	ids, das := map[vda.CntlrID]bool{}, map[vda.DAID]bool{}
	for _, ct := range c.Cntlrs {
		require.NoError(t, vda.ValidateName("cntlr", string(ct.ID)))
		require.NoError(t, vda.ValidateName("da", string(ct.DA)))
		require.False(t, ids[ct.ID] || das[ct.DA], "cntlr %s or da %s twice", ct.ID, ct.DA)
		ids[ct.ID], das[ct.DA] = true, true
		for _, h := range ct.HostNQNs {
			require.NoError(t, vda.ValidateNQN("host", h))
		}
		require.True(t, (ct.Primary == nil) != (ct.Secondary == nil), "cntlr %s: one role", ct.ID)
		if p := ct.Primary; p != nil {
			require.True(t, len(p.VDs) > 0 && len(p.VDs) <= vda.MaxVDCount)
			require.True(t, ct.StripSizeKB >= 4 && ct.StripSizeKB <= 1024 && ct.StripSizeKB&(ct.StripSizeKB-1) == 0)
		} else {
			require.NotEqual(t, ct.ID, ct.Secondary.Primary)
		}
	}
}

// noDeletes checks that a plan over an empty SPDK only creates.
func noDeletes(t *testing.T, p agent.Plan) {
	for _, s := range p.Steps {
		m := s.Op.Method
		require.False(t, strings.Contains(m, "delete") || strings.Contains(m, "detach") || strings.Contains(m, "remove"),
			"a plan over an empty SPDK deletes: %s", s)
	}
}
