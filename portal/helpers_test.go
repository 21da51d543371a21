package portal_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/portal/portaltest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// Fixtures for the black-box tests: each test serves a real portal over a
// fresh store (storetest.Each) and talks to it over HTTP.

type client = vdav1connect.PortalServiceClient

// start serves a portal over db and returns a Connect client of it.
func start(t *testing.T, db *store.DB) client {
	t.Helper()
	return portaltest.Start(t, db).Client()
}

// do calls one unary method with req and returns the response message.
func do[Req, Resp any](t *testing.T, method func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error), req *Req) (*Resp, error) {
	t.Helper()
	resp, err := method(t.Context(), connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// must is do for calls that must succeed.
func must[Req, Resp any](t *testing.T, method func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error), req *Req) *Resp {
	t.Helper()
	resp, err := do(t, method, req)
	require.NoError(t, err)
	return resp
}

// requireCode asserts that err is a Connect error with code whose message
// contains every one of want.
func requireCode(t *testing.T, err error, code connect.Code, want ...string) {
	t.Helper()
	require.Error(t, err, "want %v", code)
	var ce *connect.Error
	require.True(t, errors.As(err, &ce), "not a Connect error: %v", err)
	assert.Equal(t, code, ce.Code(), "error: %v", err)
	for _, w := range want {
		assert.Contains(t, ce.Message(), w)
	}
}

func ptr[T any](v T) *T { return &v }

// tcp is an IPv4 TCP listener.
func tcp(addr string, port int) *vdav1.NvmfListener {
	return &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: addr, Trsvcid: strconv.Itoa(port)}
}

func mkDn(t *testing.T, c client, name, location string) *vdav1.Dn {
	t.Helper()
	return must(t, c.CreateDn, &vdav1.CreateDnRequest{
		Name: name, AgentAddress: name + ":9720", Listener: tcp("10.0.0.1", 4420), Location: location,
	}).GetDn()
}

func mkCn(t *testing.T, c client, name, location string) *vdav1.Cn {
	t.Helper()
	return must(t, c.CreateCn, &vdav1.CreateCnRequest{
		Name: name, AgentAddress: name + ":9820", Listener: tcp("10.0.1.1", 4430), Location: location,
	}).GetCn()
}

// mkPd creates a malloc pd of size bytes on dn.
func mkPd(t *testing.T, c client, dn, name string, size uint64) *vdav1.Pd {
	t.Helper()
	return must(t, c.CreatePd, &vdav1.CreatePdRequest{
		DnName: dn, Name: name, Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: size}},
	}).GetPd()
}

// mkDa creates a RAID0 array.
func mkDa(t *testing.T, c client, name string, size uint64, vds, cntlrs uint32) *vdav1.Da {
	t.Helper()
	return must(t, c.CreateDa, daReq(name, size, vds, cntlrs)).GetDa()
}

func daReq(name string, size uint64, vds, cntlrs uint32) *vdav1.CreateDaRequest {
	return &vdav1.CreateDaRequest{
		Name: name, Size: size, CntlrCount: cntlrs,
		Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: vds}},
	}
}

func mkExp(t *testing.T, c client, da, name, hostNQN string) *vdav1.Exp {
	t.Helper()
	return must(t, c.CreateExp, &vdav1.CreateExpRequest{DaName: da, Name: name, HostNqn: hostNQN}).GetExp()
}

// hostNQN is a valid host NQN, distinct per i.
func hostNQN(i int) string { return fmt.Sprintf("nqn.2014-08.com.example:host%d", i) }

func getDn(t *testing.T, c client, name string) *vdav1.Dn {
	t.Helper()
	return must(t, c.GetDn, &vdav1.GetDnRequest{Name: name}).GetDn()
}

func getCn(t *testing.T, c client, name string) *vdav1.Cn {
	t.Helper()
	return must(t, c.GetCn, &vdav1.GetCnRequest{Name: name}).GetCn()
}

func getPd(t *testing.T, c client, dn, name string) *vdav1.Pd {
	t.Helper()
	return must(t, c.GetPd, &vdav1.GetPdRequest{DnName: dn, Name: name}).GetPd()
}

func getDa(t *testing.T, c client, name string) *vdav1.Da {
	t.Helper()
	return must(t, c.GetDa, &vdav1.GetDaRequest{Name: name}).GetDa()
}

func getExp(t *testing.T, c client, da, name string) *vdav1.Exp {
	t.Helper()
	return must(t, c.GetExp, &vdav1.GetExpRequest{DaName: da, Name: name}).GetExp()
}

func summary(t *testing.T, c client) *vdav1.ClusterSummary {
	t.Helper()
	return must(t, c.GetClusterSummary, &vdav1.GetClusterSummaryRequest{}).GetSummary()
}

// generations reads the generation of every named dn and cn, to compare
// before and after a change.
type generations struct {
	dns, cns map[string]uint64
}

func readGenerations(t *testing.T, c client) generations {
	t.Helper()
	g := generations{dns: map[string]uint64{}, cns: map[string]uint64{}}
	for _, dn := range must(t, c.ListDn, &vdav1.ListDnRequest{}).GetDns() {
		g.dns[dn.GetName()] = dn.GetGeneration()
	}
	for _, cn := range must(t, c.ListCn, &vdav1.ListCnRequest{}).GetCns() {
		g.cns[cn.GetName()] = cn.GetGeneration()
	}
	return g
}

// bumped says by how much each node's generation grew from g to now.
func (g generations) bumped(now generations) (dns, cns map[string]uint64) {
	dns, cns = map[string]uint64{}, map[string]uint64{}
	for n, gen := range now.dns {
		dns[n] = gen - g.dns[n]
	}
	for n, gen := range now.cns {
		cns[n] = gen - g.cns[n]
	}
	return dns, cns
}

// pageNames are the names the pagination tests create, in an order that is
// neither byte order nor case-insensitive order, with every allowed
// punctuation character.
var pageNames = []string{"alpha", "Zeta", "a_b", "0x", "Beta", "a.b", "a-b"}

// listFunc lists one page of a list: the names on it and the next token.
type listFunc func(size uint32, token string) ([]string, string, error)

// testPagination checks a list of exactly the names in created: pages of 3
// come as 3, 3, 1 in byte order with tokens on all but the last; page size
// 0 means 100 and 5000 means 1000, so either returns all; a malformed token
// and otherToken (a token of another list) are InvalidArgument.
func testPagination(t *testing.T, created []string, list listFunc, otherToken string) {
	t.Helper()
	want := append([]string(nil), created...)
	sort.Strings(want)
	require.Len(t, want, 7)

	t.Run("pages of 3", func(t *testing.T) {
		var all []string
		var sizes []int
		token := ""
		for range 10 {
			names, next, err := list(3, token)
			require.NoError(t, err)
			all = append(all, names...)
			sizes = append(sizes, len(names))
			if next == "" {
				break
			}
			token = next
		}
		assert.Equal(t, []int{3, 3, 1}, sizes)
		assert.Equal(t, want, all, "names in byte order")
	})
	for _, size := range []uint32{0, 5000} {
		t.Run(fmt.Sprintf("page size %d", size), func(t *testing.T) {
			names, next, err := list(size, "")
			require.NoError(t, err)
			assert.Equal(t, want, names)
			assert.Empty(t, next)
		})
	}
	t.Run("exact page leaves no token", func(t *testing.T) {
		names, next, err := list(7, "")
		require.NoError(t, err)
		assert.Len(t, names, 7)
		assert.Empty(t, next)
	})
	t.Run("malformed token", func(t *testing.T) {
		_, _, err := list(3, "!!not base64")
		requireCode(t, err, connect.CodeInvalidArgument, `page_token "!!not base64" is not a token of this list`)
	})
	t.Run("token of another list", func(t *testing.T) {
		require.NotEmpty(t, otherToken)
		_, _, err := list(3, otherToken)
		requireCode(t, err, connect.CodeInvalidArgument, "is not a token of this list")
	})
}

// names returns the names of a page of resources.
func names[T interface{ GetName() string }](items []T) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.GetName()
	}
	return out
}

// vdSize is the size of each vd of an array, as the portal computes it.
func vdSize(size uint64, vds uint32) uint64 { return vda.VDSize(size, vds) }
