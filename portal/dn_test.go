package portal_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

var idRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// validNode is a create request with every field valid; the node tests
// spoil one field at a time. Dns and cns take the same fields, so the cn
// tests convert it with cnCreate.
func validNode() *vdav1.CreateDnRequest {
	return &vdav1.CreateDnRequest{
		Name:         "n1",
		AgentAddress: "node1.example.com:9720",
		Listener:     tcp("192.168.1.10", 4420),
		Location:     "rack-1",
		Description:  "first node",
	}
}

func cnCreate(r *vdav1.CreateDnRequest) *vdav1.CreateCnRequest {
	return &vdav1.CreateCnRequest{
		Name: r.Name, AgentAddress: r.AgentAddress, Listener: r.Listener, Location: r.Location,
		Offline: r.Offline, HashCode: r.HashCode, Description: r.Description,
	}
}

func cnModify(r *vdav1.ModifyDnRequest) *vdav1.ModifyCnRequest {
	return &vdav1.ModifyCnRequest{
		Name: r.Name, Generation: r.Generation, AgentAddress: r.AgentAddress, Listener: r.Listener,
		Location: r.Location, Offline: r.Offline, HashCode: r.HashCode, Description: r.Description,
	}
}

// nodeCreateInvalid are create requests the portal must refuse with
// InvalidArgument, with the words the message must contain.
var nodeCreateInvalid = []struct {
	name  string
	spoil func(r *vdav1.CreateDnRequest)
	want  []string
}{
	{"empty name", func(r *vdav1.CreateDnRequest) { r.Name = "" }, []string{"name is empty"}},
	{"name of 65 characters", func(r *vdav1.CreateDnRequest) { r.Name = strings.Repeat("a", 65) }, []string{"is longer than 64 characters"}},
	{"name with a space", func(r *vdav1.CreateDnRequest) { r.Name = "a b" }, []string{`name "a b": use letters, digits`}},
	{"name with a slash", func(r *vdav1.CreateDnRequest) { r.Name = "a/b" }, []string{`name "a/b": use letters`}},
	{"name starting with a dash", func(r *vdav1.CreateDnRequest) { r.Name = "-a" }, []string{`name "-a": use letters`, "starting with a letter or digit"}},
	{"name starting with a dot", func(r *vdav1.CreateDnRequest) { r.Name = ".a" }, []string{`name ".a"`}},
	{"unicode name", func(r *vdav1.CreateDnRequest) { r.Name = "disk-é" }, []string{`name "disk-é": use letters`}},
	{"empty agent_address", func(r *vdav1.CreateDnRequest) { r.AgentAddress = "" }, []string{`agent_address "": want host:port`}},
	{"agent_address without a port", func(r *vdav1.CreateDnRequest) { r.AgentAddress = "node1" }, []string{`agent_address "node1": want host:port`}},
	{"agent_address without a host", func(r *vdav1.CreateDnRequest) { r.AgentAddress = ":9720" }, []string{`agent_address ":9720": want host:port`}},
	{"agent_address port 0", func(r *vdav1.CreateDnRequest) { r.AgentAddress = "node1:0" }, []string{`agent_address "node1:0": port must be 1..65535`}},
	{"agent_address port 70000", func(r *vdav1.CreateDnRequest) { r.AgentAddress = "node1:70000" }, []string{"port must be 1..65535"}},
	{"agent_address port not a number", func(r *vdav1.CreateDnRequest) { r.AgentAddress = "node1:http" }, []string{"port must be 1..65535"}},
	{"agent_address port with a leading zero", func(r *vdav1.CreateDnRequest) { r.AgentAddress = "node1:09720" }, []string{"port must be 1..65535"}},
	{"agent_address host with a space", func(r *vdav1.CreateDnRequest) { r.AgentAddress = "a b:1" }, []string{`agent_address "a b:1": the host is neither an IP address nor a DNS name`}},
	{"traddr unspecified", func(r *vdav1.CreateDnRequest) { r.Listener.Traddr = "0.0.0.0" }, []string{`listener traddr "0.0.0.0": hosts cannot connect to the unspecified address`}},
	{"traddr with a zone", func(r *vdav1.CreateDnRequest) { r.Listener.Adrfam = "ipv6"; r.Listener.Traddr = "fe80::1%eth0" }, []string{"an address with a zone is not reachable"}},
	{"no listener", func(r *vdav1.CreateDnRequest) { r.Listener = nil }, []string{"listener is required"}},
	{"trtype rdma", func(r *vdav1.CreateDnRequest) { r.Listener.Trtype = "rdma" }, []string{`listener trtype "rdma": only tcp is supported`}},
	{"traddr a host name", func(r *vdav1.CreateDnRequest) { r.Listener.Traddr = "node1.example.com" }, []string{`listener traddr "node1.example.com" is not an IP address`}},
	{"traddr empty", func(r *vdav1.CreateDnRequest) { r.Listener.Traddr = "" }, []string{`listener traddr "" is not an IP address`}},
	{"ipv4 family with an IPv6 address", func(r *vdav1.CreateDnRequest) { r.Listener.Traddr = "fd00::1" }, []string{`listener traddr "fd00::1" is not an IPv4 address`}},
	{"ipv6 family with an IPv4 address", func(r *vdav1.CreateDnRequest) { r.Listener.Adrfam = "ipv6" }, []string{`listener traddr "192.168.1.10" is not an IPv6 address`}},
	{"unknown family", func(r *vdav1.CreateDnRequest) { r.Listener.Adrfam = "ib" }, []string{`listener adrfam "ib": want ipv4 or ipv6`}},
	{"trsvcid 0", func(r *vdav1.CreateDnRequest) { r.Listener.Trsvcid = "0" }, []string{`listener trsvcid "0": want a port 1..65535`}},
	{"trsvcid 70000", func(r *vdav1.CreateDnRequest) { r.Listener.Trsvcid = "70000" }, []string{`listener trsvcid "70000": want a port 1..65535`}},
	{"trsvcid abc", func(r *vdav1.CreateDnRequest) { r.Listener.Trsvcid = "abc" }, []string{`listener trsvcid "abc"`}},
	{"trsvcid empty", func(r *vdav1.CreateDnRequest) { r.Listener.Trsvcid = "" }, []string{`listener trsvcid ""`}},
	{"trsvcid with a leading zero", func(r *vdav1.CreateDnRequest) { r.Listener.Trsvcid = "04420" }, []string{`listener trsvcid "04420"`}},
	{"hash_code 65536", func(r *vdav1.CreateDnRequest) { r.HashCode = ptr[uint32](65536) }, []string{"hash_code 65536 is above 65535"}},
	{"description of 1025 bytes", func(r *vdav1.CreateDnRequest) { r.Description = strings.Repeat("x", 1025) }, []string{"description is longer than 1024 bytes"}},
	{"description with a NUL", func(r *vdav1.CreateDnRequest) { r.Description = "a\x00b" }, []string{"description contains a NUL byte"}},
	{"location of 256 bytes", func(r *vdav1.CreateDnRequest) { r.Location = strings.Repeat("l", 256) }, []string{"location is longer than 255 bytes"}},
	{"location with a newline", func(r *vdav1.CreateDnRequest) { r.Location = "rack\n1" }, []string{"has a control character"}},
	{
		"several problems at once",
		func(r *vdav1.CreateDnRequest) {
			r.Name = ""
			r.AgentAddress = "node1"
			r.Listener.Trsvcid = "0"
			r.HashCode = ptr[uint32](1 << 20)
		},
		[]string{"name is empty", `agent_address "node1": want host:port`, `listener trsvcid "0"`, "hash_code 1048576 is above 65535"},
	},
}

// nodeModifyInvalid are modify requests of node "n1" the portal must refuse.
var nodeModifyInvalid = []struct {
	name string
	req  *vdav1.ModifyDnRequest
	want []string
}{
	{"empty name", &vdav1.ModifyDnRequest{Description: ptr("x")}, []string{"name is empty"}},
	{"bad name", &vdav1.ModifyDnRequest{Name: "a b"}, []string{`name "a b"`}},
	{"bad agent_address", &vdav1.ModifyDnRequest{Name: "n1", AgentAddress: ptr("n1")}, []string{`agent_address "n1": want host:port`}},
	{"empty agent_address", &vdav1.ModifyDnRequest{Name: "n1", AgentAddress: ptr("")}, []string{`agent_address "": want host:port`}},
	{"bad listener", &vdav1.ModifyDnRequest{Name: "n1", Listener: &vdav1.NvmfListener{Trtype: "rdma", Traddr: "x", Trsvcid: "0"}},
		[]string{`trtype "rdma"`, `traddr "x" is not an IP address`, `trsvcid "0"`}},
	{"hash_code 70000", &vdav1.ModifyDnRequest{Name: "n1", HashCode: ptr[uint32](70000)}, []string{"hash_code 70000 is above 65535"}},
	{"long description", &vdav1.ModifyDnRequest{Name: "n1", Description: ptr(strings.Repeat("é", 513))}, []string{"description is longer than 1024 bytes"}},
	{"location with a tab", &vdav1.ModifyDnRequest{Name: "n1", Location: ptr("a\tb")}, []string{"control character"}},
}

func TestCreateDn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		before := time.Now().Add(-time.Second).UnixMilli()
		req := validNode()
		req.HashCode = ptr[uint32](65535)
		req.Offline = true
		got := must(t, c.CreateDn, req).GetDn()
		after := time.Now().Add(time.Second).UnixMilli()

		assert.Regexp(t, idRE, got.GetId())
		assert.Equal(t, "n1", got.GetName())
		assert.Equal(t, "node1.example.com:9720", got.GetAgentAddress())
		assert.True(t, proto.Equal(tcp("192.168.1.10", 4420), got.GetListener()), "listener %v", got.GetListener())
		assert.Equal(t, "rack-1", got.GetLocation())
		assert.True(t, got.GetOffline())
		assert.Equal(t, uint32(65535), got.GetHashCode())
		assert.Equal(t, "first node", got.GetDescription())
		assert.Equal(t, uint64(1), got.GetGeneration())
		assert.Equal(t, vdav1.Health_HEALTH_UNKNOWN, got.GetStatus().GetHealth())
		assert.Zero(t, got.GetStatus().GetReportedAtMs())
		assert.Zero(t, got.GetStatus().GetAppliedGeneration())
		assert.GreaterOrEqual(t, got.GetCreatedAtMs(), before)
		assert.LessOrEqual(t, got.GetCreatedAtMs(), after)
		assert.Zero(t, got.GetPdCount())

		// What Create returns is what Get and List return.
		assert.True(t, proto.Equal(got, getDn(t, c, "n1")), "GetDn differs from CreateDn:\n%v\n%v", got, getDn(t, c, "n1"))
		list := must(t, c.ListDn, &vdav1.ListDnRequest{}).GetDns()
		require.Len(t, list, 1)
		assert.True(t, proto.Equal(got, list[0]), "ListDn differs from CreateDn")

		t.Run("defaults and normalisation", func(t *testing.T) {
			tests := []struct {
				name     string
				listener *vdav1.NvmfListener
				want     *vdav1.NvmfListener
			}{
				{"ipv4 family derived", &vdav1.NvmfListener{Traddr: "10.1.2.3", Trsvcid: "4420"}, tcp("10.1.2.3", 4420)},
				{"ipv6 family derived", &vdav1.NvmfListener{Traddr: "fd00::7", Trsvcid: "4420"},
					&vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv6", Traddr: "fd00::7", Trsvcid: "4420"}},
				{"case folded", &vdav1.NvmfListener{Trtype: "TCP", Adrfam: "IPv4", Traddr: "10.1.2.3", Trsvcid: "65535"}, tcp("10.1.2.3", 65535)},
			}
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := validNode()
					r.Name = "norm" + string(rune('a'+i))
					r.Listener = tt.listener
					got := must(t, c.CreateDn, r).GetDn()
					assert.True(t, proto.Equal(tt.want, got.GetListener()), "listener %v, want %v", got.GetListener(), tt.want)
					assert.True(t, proto.Equal(tt.want, getDn(t, c, r.Name).GetListener()))
				})
			}
		})

		t.Run("longest name, description and location", func(t *testing.T) {
			r := validNode()
			r.Name = strings.Repeat("N", 64)
			r.Description = strings.Repeat("é", 512) // 1024 bytes
			r.Location = strings.Repeat("l", 255)
			got := must(t, c.CreateDn, r).GetDn()
			assert.Equal(t, r.Name, got.GetName())
			assert.Equal(t, r.Description, getDn(t, c, r.Name).GetDescription())
			assert.Equal(t, r.Location, getDn(t, c, r.Name).GetLocation())
		})

		t.Run("hash_code derived from the name", func(t *testing.T) {
			r := validNode()
			r.Name = "hashed"
			dn := must(t, c.CreateDn, r).GetDn()
			assert.LessOrEqual(t, dn.GetHashCode(), uint32(65535))
			// A cn of the same name (names are per kind) gets the same code.
			cn := must(t, c.CreateCn, cnCreate(r)).GetCn()
			assert.Equal(t, dn.GetHashCode(), cn.GetHashCode())
			r.Name = "hashed2"
			r.HashCode = ptr[uint32](0)
			assert.Zero(t, must(t, c.CreateDn, r).GetDn().GetHashCode(), "an explicit 0 is kept")
		})
	})
}

func TestCreateDnInvalid(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		for _, tt := range nodeCreateInvalid {
			t.Run(tt.name, func(t *testing.T) {
				r := validNode()
				r.Listener = proto.Clone(r.Listener).(*vdav1.NvmfListener)
				tt.spoil(r)
				_, err := do(t, c.CreateDn, r)
				requireCode(t, err, connect.CodeInvalidArgument, tt.want...)
			})
		}
		t.Run("nothing was created", func(t *testing.T) {
			assert.Empty(t, must(t, c.ListDn, &vdav1.ListDnRequest{}).GetDns())
		})
	})
}

// TestListenerFamily checks how the address family defaults and that a bad
// address is reported once, without noise about the optional family.
func TestListenerFamily(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		for i, tt := range []struct{ traddr, family string }{
			{"10.0.0.1", "ipv4"},
			{"fd00::1", "ipv6"},
			{"::ffff:10.0.0.1", "ipv6"},
		} {
			r := &vdav1.CreateDnRequest{Name: fmt.Sprintf("f%d", i), AgentAddress: "node1:9720",
				Listener: &vdav1.NvmfListener{Traddr: tt.traddr, Trsvcid: "4420"}}
			dn := must(t, c.CreateDn, r).GetDn()
			assert.Equal(t, tt.family, dn.GetListener().GetAdrfam(), tt.traddr)
		}
		_, err := do(t, c.CreateDn, &vdav1.CreateDnRequest{Name: "bad", AgentAddress: "node1:9720",
			Listener: &vdav1.NvmfListener{Traddr: "not-an-ip", Trsvcid: "4420"}})
		requireCode(t, err, connect.CodeInvalidArgument, `listener traddr "not-an-ip" is not an IP address`)
		assert.NotContains(t, err.Error(), "adrfam")
	})
}

func TestDnAlreadyExists(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		first := mkDn(t, c, "d1", "a")
		_, err := do(t, c.CreateDn, &vdav1.CreateDnRequest{Name: "d1", AgentAddress: "other:1", Listener: tcp("10.9.9.9", 1)})
		requireCode(t, err, connect.CodeAlreadyExists, "dn d1")
		assert.True(t, proto.Equal(first, getDn(t, c, "d1")), "the first dn is untouched")
		// Names are case-sensitive.
		mkDn(t, c, "D1", "a")
		assert.Len(t, must(t, c.ListDn, &vdav1.ListDnRequest{}).GetDns(), 2)
	})
}

func TestDnNotFound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkCn(t, c, "nope", "") // a cn of that name is not a dn
		calls := map[string]func() error{
			"get": func() error { _, err := do(t, c.GetDn, &vdav1.GetDnRequest{Name: "nope"}); return err },
			"modify": func() error {
				_, err := do(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "nope", Description: ptr("x")})
				return err
			},
			"delete": func() error { _, err := do(t, c.DeleteDn, &vdav1.DeleteDnRequest{Name: "nope"}); return err },
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) {
				requireCode(t, call(), connect.CodeNotFound, "dn nope")
			})
		}
		t.Run("invalid names", func(t *testing.T) {
			_, err := do(t, c.GetDn, &vdav1.GetDnRequest{Name: "a/b"})
			requireCode(t, err, connect.CodeInvalidArgument, `name "a/b"`)
			_, err = do(t, c.DeleteDn, &vdav1.DeleteDnRequest{})
			requireCode(t, err, connect.CodeInvalidArgument, "name is empty")
		})
	})
}

func TestModifyDn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		orig := must(t, c.CreateDn, validNode()).GetDn()

		t.Run("absent fields keep their values", func(t *testing.T) {
			got := must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "n1", Description: ptr("second")}).GetDn()
			want := proto.Clone(orig).(*vdav1.Dn)
			want.Description = "second"
			want.Generation = 2
			assert.True(t, proto.Equal(want, got), "got %v\nwant %v", got, want)
			assert.True(t, proto.Equal(want, getDn(t, c, "n1")))
		})
		t.Run("every field", func(t *testing.T) {
			got := must(t, c.ModifyDn, &vdav1.ModifyDnRequest{
				Name: "n1", Generation: ptr[uint64](2), AgentAddress: ptr("[fd00::1]:9721"),
				Listener: &vdav1.NvmfListener{Traddr: "fd00::1", Trsvcid: "4421"}, Location: ptr("rack-2"),
				Offline: ptr(true), HashCode: ptr[uint32](7), Description: ptr(""),
			}).GetDn()
			assert.Equal(t, "[fd00::1]:9721", got.GetAgentAddress())
			assert.True(t, proto.Equal(&vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv6", Traddr: "fd00::1", Trsvcid: "4421"}, got.GetListener()))
			assert.Equal(t, "rack-2", got.GetLocation())
			assert.True(t, got.GetOffline())
			assert.Equal(t, uint32(7), got.GetHashCode())
			assert.Empty(t, got.GetDescription())
			assert.Equal(t, uint64(3), got.GetGeneration())
			assert.Equal(t, orig.GetId(), got.GetId())
			assert.Equal(t, orig.GetCreatedAtMs(), got.GetCreatedAtMs())
			assert.True(t, proto.Equal(got, getDn(t, c, "n1")))
		})
		t.Run("an empty modify changes nothing", func(t *testing.T) {
			before := getDn(t, c, "n1")
			got := must(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "n1"}).GetDn()
			assert.True(t, proto.Equal(before, got), "no new generation, so no re-sync of the node")
		})
		t.Run("wrong generation", func(t *testing.T) {
			before := getDn(t, c, "n1")
			_, err := do(t, c.ModifyDn, &vdav1.ModifyDnRequest{Name: "n1", Generation: ptr[uint64](2), Description: ptr("lost")})
			requireCode(t, err, connect.CodeAborted, "dn n1 is at generation 3, not 2")
			assert.True(t, proto.Equal(before, getDn(t, c, "n1")), "nothing changed")
		})
		for _, tt := range nodeModifyInvalid {
			t.Run(tt.name, func(t *testing.T) {
				before := getDn(t, c, "n1")
				_, err := do(t, c.ModifyDn, tt.req)
				requireCode(t, err, connect.CodeInvalidArgument, tt.want...)
				assert.True(t, proto.Equal(before, getDn(t, c, "n1")), "nothing changed")
			})
		}
	})
}

func TestDeleteDn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		mkDn(t, c, "d1", "")
		mkDn(t, c, "d2", "")
		mkPd(t, c, "d2", "p1", 64<<20)

		t.Run("wrong generation", func(t *testing.T) {
			_, err := do(t, c.DeleteDn, &vdav1.DeleteDnRequest{Name: "d1", Generation: ptr[uint64](2)})
			requireCode(t, err, connect.CodeAborted, "dn d1 is at generation 1, not 2")
			getDn(t, c, "d1")
		})
		t.Run("with the right generation", func(t *testing.T) {
			must(t, c.DeleteDn, &vdav1.DeleteDnRequest{Name: "d1", Generation: ptr[uint64](1)})
			_, err := do(t, c.GetDn, &vdav1.GetDnRequest{Name: "d1"})
			requireCode(t, err, connect.CodeNotFound, "dn d1")
			_, err = do(t, c.DeleteDn, &vdav1.DeleteDnRequest{Name: "d1"})
			requireCode(t, err, connect.CodeNotFound, "dn d1")
		})
		t.Run("a dn with pds", func(t *testing.T) {
			_, err := do(t, c.DeleteDn, &vdav1.DeleteDnRequest{Name: "d2"})
			requireCode(t, err, connect.CodeFailedPrecondition, "dn d2 still has 1 pd(s); delete them first")
			assert.Equal(t, uint32(1), getDn(t, c, "d2").GetPdCount())
			must(t, c.DeletePd, &vdav1.DeletePdRequest{DnName: "d2", Name: "p1"})
			must(t, c.DeleteDn, &vdav1.DeleteDnRequest{Name: "d2"})
			assert.Empty(t, must(t, c.ListDn, &vdav1.ListDnRequest{}).GetDns())
		})
		t.Run("the name can be used again", func(t *testing.T) {
			dn := mkDn(t, c, "d1", "")
			assert.Equal(t, uint64(1), dn.GetGeneration())
		})
	})
}

// TestModifyDnListener: the primaries of arrays with vds on a dn connect to
// the dn's listener, so changing it bumps the cns holding those primaries
// (and nothing else does).
func TestModifyDnListener(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		for _, dn := range []string{"d1", "d2", "d3"} {
			mkDn(t, c, dn, "")
			mkPd(t, c, dn, "p1", 1<<30)
		}
		for _, cn := range []string{"c1", "c2", "c3"} {
			mkCn(t, c, cn, "")
		}
		// Each array has one vd, so each sits on one dn; the dns have equal
		// free space, so the first goes to the lowest pd id. Find where.
		a1 := mkDa(t, c, "a1", 64<<20, 1, 2)
		onDn := a1.GetVds()[0].GetDnName()
		primary, secondary := a1.GetCntlrs()[0].GetCnName(), a1.GetCntlrs()[1].GetCnName()
		require.Equal(t, vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, a1.GetCntlrs()[0].GetRole())

		tests := []struct {
			name    string
			req     *vdav1.ModifyDnRequest
			wantDns map[string]uint64
			wantCns map[string]uint64
		}{
			{
				name:    "description only",
				req:     &vdav1.ModifyDnRequest{Name: onDn, Description: ptr("new")},
				wantDns: map[string]uint64{onDn: 1},
			},
			{
				name: "the same listener",
				req:  &vdav1.ModifyDnRequest{Name: onDn, Listener: tcp("10.0.0.1", 4420)},
			},
			{
				name:    "a new listener",
				req:     &vdav1.ModifyDnRequest{Name: onDn, Listener: tcp("10.0.0.2", 4420)},
				wantDns: map[string]uint64{onDn: 1},
				wantCns: map[string]uint64{primary: 1},
			},
			{
				name:    "offline",
				req:     &vdav1.ModifyDnRequest{Name: onDn, Offline: ptr(true)},
				wantDns: map[string]uint64{onDn: 1},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := readGenerations(t, c)
				must(t, c.ModifyDn, tt.req)
				dns, cns := before.bumped(readGenerations(t, c))
				assertBumped(t, dns, tt.wantDns)
				assertBumped(t, cns, tt.wantCns)
			})
		}
		assert.NotEqual(t, primary, secondary)
	})
}

// assertBumped checks that exactly the nodes in want grew, by want's amount.
func assertBumped(t *testing.T, got, want map[string]uint64) {
	t.Helper()
	for name, n := range got {
		assert.Equal(t, want[name], n, "generation of %s grew by %d, want %d", name, n, want[name])
	}
	for name := range want {
		assert.Contains(t, got, name)
	}
}

func TestListDn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := start(t, db)
		for _, n := range pageNames {
			mkDn(t, c, n, "")
			mkCn(t, c, n, "")
		}
		cnToken := must(t, c.ListCn, &vdav1.ListCnRequest{PageSize: 1}).GetNextPageToken()
		testPagination(t, pageNames, func(size uint32, token string) ([]string, string, error) {
			resp, err := do(t, c.ListDn, &vdav1.ListDnRequest{PageSize: size, PageToken: token})
			return names(resp.GetDns()), resp.GetNextPageToken(), err
		}, cnToken)
	})
}

// TestListDnPageSizeLimits fills a store with 1001 dns (directly, for speed)
// to see the default page of 100 and the cap of 1000.
func TestListDnPageSizeLimits(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		require.NoError(t, db.Update(t.Context(), func(ctx context.Context, tx *store.Tx) error {
			for i := range 1001 {
				dn := store.DN{NodeSpec: store.NodeSpec{
					Name: fmt.Sprintf("dn%04d", i), AgentAddr: "h:1",
					Listener: store.Listener{TrType: "tcp", AdrFam: "ipv4", TrAddr: "10.0.0.1", TrSvcID: "4420"},
				}}
				if err := tx.InsertDN(ctx, &dn); err != nil {
					return err
				}
			}
			return nil
		}))
		c := start(t, db)
		tests := []struct {
			size     uint32
			want     int
			wantNext bool
		}{
			{size: 0, want: 100, wantNext: true},
			{size: 1000, want: 1000, wantNext: true},
			{size: 5000, want: 1000, wantNext: true},
			{size: 1001, want: 1000, wantNext: true},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
				resp := must(t, c.ListDn, &vdav1.ListDnRequest{PageSize: tt.size})
				assert.Len(t, resp.GetDns(), tt.want)
				assert.Equal(t, tt.wantNext, resp.GetNextPageToken() != "")
				assert.Equal(t, "dn0000", resp.GetDns()[0].GetName())
				next := must(t, c.ListDn, &vdav1.ListDnRequest{PageSize: 5000, PageToken: resp.GetNextPageToken()})
				assert.Len(t, next.GetDns(), 1001-tt.want, "the rest")
				assert.Empty(t, next.GetNextPageToken())
			})
		}
	})
}
