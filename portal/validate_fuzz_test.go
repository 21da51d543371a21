package portal

import (
	"errors"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// validators run the checks the create handlers run before any
// transaction, one per request type; FuzzValidate picks one by the input's
// first byte.
var validators = []struct {
	msg   func() proto.Message
	check func(proto.Message) error
}{
	{func() proto.Message { return &vdav1.CreateDnRequest{} }, func(m proto.Message) error {
		_, err := newNodeSpec(createDn{m.(*vdav1.CreateDnRequest)})
		return err
	}},
	{func() proto.Message { return &vdav1.CreateCnRequest{} }, func(m proto.Message) error {
		_, err := newNodeSpec(createCn{m.(*vdav1.CreateCnRequest)})
		return err
	}},
	{func() proto.Message { return &vdav1.ModifyDnRequest{} }, func(m proto.Message) error {
		_, err := newNodeEdit(modifyDn{m.(*vdav1.ModifyDnRequest)})
		return err
	}},
	{func() proto.Message { return &vdav1.CreatePdRequest{} }, func(m proto.Message) error {
		_, _, _, _, err := checkCreatePd(m.(*vdav1.CreatePdRequest))
		return err
	}},
	{func() proto.Message { return &vdav1.CreateDaRequest{} }, func(m proto.Message) error {
		da, err := checkCreateDa(m.(*vdav1.CreateDaRequest))
		if err == nil && (da.VDCount == 0 || da.CntlrCount == 0 || da.Size == 0) {
			return errors.New("accepted an array without vds, controllers or size")
		}
		return err
	}},
	{func() proto.Message { return &vdav1.CreateExpRequest{} }, func(m proto.Message) error {
		return checkCreateExp(m.(*vdav1.CreateExpRequest))
	}},
	{func() proto.Message { return &vdav1.CreateTokenRequest{} }, func(m proto.Message) error {
		role, err := checkCreateToken(m.(*vdav1.CreateTokenRequest))
		if err == nil && !role.Valid() {
			return errors.New("accepted a token without a role")
		}
		return err
	}},
}

// FuzzValidate feeds random requests to the portal's request validation:
// it must never panic, and every rejection must be InvalidArgument.
func FuzzValidate(f *testing.F) {
	seeds := []struct {
		kind byte
		msg  proto.Message
	}{
		{0, &vdav1.CreateDnRequest{Name: "dn1", AgentAddress: "dn1:9720",
			Listener: &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: "10.0.0.1", Trsvcid: "4420"}}},
		{1, &vdav1.CreateCnRequest{Name: "cn1", AgentAddress: "[::1]:9820",
			Listener: &vdav1.NvmfListener{Traddr: "fe80::1%eth0", Trsvcid: "04420"}}},
		{2, &vdav1.ModifyDnRequest{Name: "dn1", Listener: &vdav1.NvmfListener{}}},
		{3, &vdav1.CreatePdRequest{DnName: "dn1", Name: "pd1", Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: 1 << 30}}}},
		{3, &vdav1.CreatePdRequest{DnName: "dn1", Name: "pd1", Backend: &vdav1.CreatePdRequest_Aio{Aio: &vdav1.PdAio{Path: "/dev/../x"}}}},
		{3, &vdav1.CreatePdRequest{DnName: "dn1", Name: "pd1", Backend: &vdav1.CreatePdRequest_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: "0000:00:04.0"}}}},
		{4, &vdav1.CreateDaRequest{Name: "da1", Size: 1 << 30, Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 3, StripSizeKb: 64}}, CntlrCount: 2}},
		{5, &vdav1.CreateExpRequest{DaName: "da1", Name: "e1", HostNqn: "nqn.2014-08.org.nvmexpress:uuid:5b7ad2a4-0f3e-4b58-9a52-0c4b2e9c1f01"}},
		{6, &vdav1.CreateTokenRequest{Name: "ops", Role: vdav1.Role_ROLE_OPERATOR, Description: "ops team"}},
		{6, &vdav1.CreateTokenRequest{Name: "x", Role: 99}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s.msg)
		require.NoError(f, err)
		f.Add(append([]byte{s.kind}, b...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		v := validators[int(in[0])%len(validators)]
		m := v.msg()
		if err := proto.Unmarshal(in[1:], m); err != nil {
			return
		}
		err := v.check(m)
		if err == nil {
			return
		}
		if !errors.Is(err, vda.ErrInvalidArgument) && connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("%T %v: rejected without InvalidArgument: %v", m, m, err)
		}
	})
}
