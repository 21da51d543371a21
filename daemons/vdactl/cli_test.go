package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// assertProto checks that got equals want as protobuf messages.
func assertProto(t *testing.T, want, got proto.Message) {
	t.Helper()
	assert.True(t, proto.Equal(want, got), "want %v\n got %v", want, got)
}

func tcpListener(addr, port string) *vdav1.NvmfListener {
	return &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: addr, Trsvcid: port}
}

// TestRequests checks the request each command sends.
func TestRequests(t *testing.T) {
	t.Parallel()
	gen := func(n uint64) *uint64 { return &n }
	tests := []struct {
		name   string
		args   []string
		method string
		want   proto.Message
	}{
		{
			name:   "dn create",
			args:   []string{"dn", "create", "dn0", "--agent-address", "10.0.0.1:9720", "--traddr", "127.0.0.1", "--trsvcid", "4420"},
			method: "CreateDn",
			want: &vdav1.CreateDnRequest{
				Name: "dn0", AgentAddress: "10.0.0.1:9720", Listener: tcpListener("127.0.0.1", "4420"),
			},
		},
		{
			name: "dn create every flag",
			args: []string{"dn", "create", "dn1", "--agent-address", "h:1", "--trtype", "tcp", "--adrfam", "ipv6",
				"--traddr", "::1", "--trsvcid", "4421", "--location", "rack1", "--offline", "--hash-code", "0", "--description", "first"},
			method: "CreateDn",
			want: &vdav1.CreateDnRequest{
				Name: "dn1", AgentAddress: "h:1",
				Listener: &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv6", Traddr: "::1", Trsvcid: "4421"},
				Location: "rack1", Offline: true, HashCode: proto.Uint32(0), Description: "first",
			},
		},
		{
			name:   "dn delete",
			args:   []string{"dn", "delete", "dn0"},
			method: "DeleteDn",
			want:   &vdav1.DeleteDnRequest{Name: "dn0"},
		},
		{
			name:   "dn delete with generation",
			args:   []string{"dn", "delete", "dn0", "--generation", "4"},
			method: "DeleteDn",
			want:   &vdav1.DeleteDnRequest{Name: "dn0", Generation: gen(4)},
		},
		{
			name:   "dn modify sends only the flags given",
			args:   []string{"dn", "modify", "dn0", "--location", "rack2"},
			method: "ModifyDn",
			want:   &vdav1.ModifyDnRequest{Name: "dn0", Location: proto.String("rack2")},
		},
		{
			name:   "dn modify no-offline and empty description",
			args:   []string{"dn", "modify", "dn0", "--no-offline", "--description", "", "--generation", "9"},
			method: "ModifyDn",
			want: &vdav1.ModifyDnRequest{
				Name: "dn0", Offline: proto.Bool(false), Description: proto.String(""), Generation: gen(9),
			},
		},
		{
			name:   "dn modify offline hash code agent",
			args:   []string{"dn", "modify", "dn0", "--offline", "--hash-code", "77", "--agent-address", "h:2"},
			method: "ModifyDn",
			want: &vdav1.ModifyDnRequest{
				Name: "dn0", Offline: proto.Bool(true), HashCode: proto.Uint32(77), AgentAddress: proto.String("h:2"),
			},
		},
		{
			name:   "dn modify whole listener",
			args:   []string{"dn", "modify", "dn0", "--trtype", "tcp", "--adrfam", "ipv4", "--traddr", "10.0.0.9", "--trsvcid", "4430"},
			method: "ModifyDn",
			want:   &vdav1.ModifyDnRequest{Name: "dn0", Listener: tcpListener("10.0.0.9", "4430")},
		},
		{
			name:   "dn get",
			args:   []string{"dn", "get", "dn0"},
			method: "GetDn",
			want:   &vdav1.GetDnRequest{Name: "dn0"},
		},
		{
			name:   "dn events",
			args:   []string{"dn", "events", "dn0"},
			method: "ListDnEvents",
			want:   &vdav1.ListNodeEventsRequest{Name: "dn0"},
		},
		{
			name:   "dn events limit",
			args:   []string{"dn", "events", "dn0", "--limit", "5"},
			method: "ListDnEvents",
			want:   &vdav1.ListNodeEventsRequest{Name: "dn0", Limit: 5},
		},
		{
			name:   "cn events",
			args:   []string{"cn", "events", "--limit", "1000", "cn0"},
			method: "ListCnEvents",
			want:   &vdav1.ListNodeEventsRequest{Name: "cn0", Limit: 1000},
		},
		{
			name:   "cn create",
			args:   []string{"cn", "create", "cn0", "--agent-address", "10.0.0.2:9721", "--traddr", "10.0.0.2", "--trsvcid", "4420", "--location", "rack3"},
			method: "CreateCn",
			want: &vdav1.CreateCnRequest{
				Name: "cn0", AgentAddress: "10.0.0.2:9721", Listener: tcpListener("10.0.0.2", "4420"), Location: "rack3",
			},
		},
		{
			name:   "cn modify",
			args:   []string{"cn", "modify", "cn0", "--offline"},
			method: "ModifyCn",
			want:   &vdav1.ModifyCnRequest{Name: "cn0", Offline: proto.Bool(true)},
		},
		{
			name:   "cn delete",
			args:   []string{"cn", "delete", "cn0", "--generation", "1"},
			method: "DeleteCn",
			want:   &vdav1.DeleteCnRequest{Name: "cn0", Generation: gen(1)},
		},
		{
			name:   "cn list",
			args:   []string{"cn", "list"},
			method: "ListCn",
			want:   &vdav1.ListCnRequest{},
		},
		{
			name:   "cn get",
			args:   []string{"cn", "get", "cn0"},
			method: "GetCn",
			want:   &vdav1.GetCnRequest{Name: "cn0"},
		},
		{
			name:   "pd create malloc",
			args:   []string{"pd", "create", "--dn", "dn0", "pd0", "--malloc-size", "1GiB"},
			method: "CreatePd",
			want: &vdav1.CreatePdRequest{DnName: "dn0", Name: "pd0",
				Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: 1 << 30}}},
		},
		{
			name:   "pd create aio",
			args:   []string{"pd", "create", "pd1", "--dn", "dn0", "--aio-path", "/dev/sdb", "--offline", "--description", "spare"},
			method: "CreatePd",
			want: &vdav1.CreatePdRequest{DnName: "dn0", Name: "pd1", Offline: true, Description: "spare",
				Backend: &vdav1.CreatePdRequest_Aio{Aio: &vdav1.PdAio{Path: "/dev/sdb"}}},
		},
		{
			name:   "pd create nvme",
			args:   []string{"pd", "create", "--dn", "dn0", "pd2", "--nvme-pcie", "0000:3b:00.0"},
			method: "CreatePd",
			want: &vdav1.CreatePdRequest{DnName: "dn0", Name: "pd2",
				Backend: &vdav1.CreatePdRequest_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: "0000:3b:00.0"}}},
		},
		{
			name:   "pd modify",
			args:   []string{"pd", "modify", "--dn", "dn0", "pd0", "--no-offline"},
			method: "ModifyPd",
			want:   &vdav1.ModifyPdRequest{DnName: "dn0", Name: "pd0", Offline: proto.Bool(false)},
		},
		{
			name:   "pd delete",
			args:   []string{"pd", "delete", "--dn", "dn0", "pd0", "--generation", "2"},
			method: "DeletePd",
			want:   &vdav1.DeletePdRequest{DnName: "dn0", Name: "pd0", Generation: gen(2)},
		},
		{
			name:   "pd get",
			args:   []string{"pd", "get", "--dn", "dn0", "pd0"},
			method: "GetPd",
			want:   &vdav1.GetPdRequest{DnName: "dn0", Name: "pd0"},
		},
		{
			name:   "pd list one page",
			args:   []string{"pd", "list", "--dn", "dn0", "--page-size", "5"},
			method: "ListPd",
			want:   &vdav1.ListPdRequest{DnName: "dn0", PageSize: 5},
		},
		{
			name:   "da create",
			args:   []string{"da", "create", "da0", "--size", "10GiB", "--vd-count", "2", "--strip-size-kb", "64", "--cntlr-count", "2"},
			method: "CreateDa",
			want: &vdav1.CreateDaRequest{Name: "da0", Size: 10 << 30, CntlrCount: 2,
				Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 2, StripSizeKb: 64}}},
		},
		{
			name:   "da create decimal size and defaults",
			args:   []string{"da", "create", "da1", "--size", "10GB", "--description", "d"},
			method: "CreateDa",
			want: &vdav1.CreateDaRequest{Name: "da1", Size: 10_000_000_000, CntlrCount: 1, Description: "d",
				Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 1, StripSizeKb: 64}}},
		},
		{
			name:   "da modify",
			args:   []string{"da", "modify", "da0", "--description", "new"},
			method: "ModifyDa",
			want:   &vdav1.ModifyDaRequest{Name: "da0", Description: proto.String("new")},
		},
		{
			name:   "da modify primary",
			args:   []string{"da", "modify", "da0", "--primary", "0123456789abcdef", "--generation", "4"},
			method: "ModifyDa",
			want:   &vdav1.ModifyDaRequest{Name: "da0", PrimaryCntlrId: proto.String("0123456789abcdef"), Generation: gen(4)},
		},
		{
			name:   "da delete",
			args:   []string{"da", "delete", "da0"},
			method: "DeleteDa",
			want:   &vdav1.DeleteDaRequest{Name: "da0"},
		},
		{
			name:   "da get",
			args:   []string{"da", "get", "da0"},
			method: "GetDa",
			want:   &vdav1.GetDaRequest{Name: "da0"},
		},
		{
			name:   "exp create",
			args:   []string{"exp", "create", "--da", "da0", "exp0", "--host-nqn", "nqn.2014-08.org.example:host1"},
			method: "CreateExp",
			want:   &vdav1.CreateExpRequest{DaName: "da0", Name: "exp0", HostNqn: "nqn.2014-08.org.example:host1"},
		},
		{
			name:   "exp modify",
			args:   []string{"exp", "modify", "--da", "da0", "exp0", "--generation", "3"},
			method: "ModifyExp",
			want:   &vdav1.ModifyExpRequest{DaName: "da0", Name: "exp0", Generation: gen(3)},
		},
		{
			name:   "exp delete",
			args:   []string{"exp", "delete", "--da", "da0", "exp0"},
			method: "DeleteExp",
			want:   &vdav1.DeleteExpRequest{DaName: "da0", Name: "exp0"},
		},
		{
			name:   "exp list",
			args:   []string{"exp", "list", "--da", "da0"},
			method: "ListExp",
			want:   &vdav1.ListExpRequest{DaName: "da0"},
		},
		{
			name:   "cluster summary",
			args:   []string{"cluster", "summary"},
			method: "GetClusterSummary",
			want:   &vdav1.GetClusterSummaryRequest{},
		},
		{
			name:   "dn syncup",
			args:   []string{"dn", "syncup", "dn0"},
			method: "SyncupDn",
			want:   &vdav1.SyncupDnRequest{Name: "dn0"},
		},
		{
			name:   "dn syncup force",
			args:   []string{"dn", "syncup", "dn0", "--force"},
			method: "SyncupDn",
			want:   &vdav1.SyncupDnRequest{Name: "dn0", Force: true},
		},
		{
			name:   "cn syncup force",
			args:   []string{"cn", "syncup", "--force", "cn0"},
			method: "SyncupCn",
			want:   &vdav1.SyncupCnRequest{Name: "cn0", Force: true},
		},
		{
			name:   "token create",
			args:   []string{"token", "create", "ci", "--role", "operator", "--description", "the CI"},
			method: "CreateToken",
			want:   &vdav1.CreateTokenRequest{Name: "ci", Role: vdav1.Role_ROLE_OPERATOR, Description: "the CI"},
		},
		{
			name:   "token create read-only",
			args:   []string{"token", "create", "ro", "--role", "read-only"},
			method: "CreateToken",
			want:   &vdav1.CreateTokenRequest{Name: "ro", Role: vdav1.Role_ROLE_READ_ONLY},
		},
		{
			name:   "token create admin",
			args:   []string{"token", "create", "root", "--role", "admin"},
			method: "CreateToken",
			want:   &vdav1.CreateTokenRequest{Name: "root", Role: vdav1.Role_ROLE_ADMIN},
		},
		{
			name:   "token delete",
			args:   []string{"token", "delete", "ci"},
			method: "DeleteToken",
			want:   &vdav1.DeleteTokenRequest{Name: "ci"},
		},
		{
			name:   "token list one page",
			args:   []string{"token", "list", "--page-size", "10"},
			method: "ListToken",
			want:   &vdav1.ListTokenRequest{PageSize: 10},
		},
		{
			name:   "whoami",
			args:   []string{"whoami"},
			method: "WhoAmI",
			want:   &vdav1.WhoAmIRequest{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, url := newFake(t)
			vdactl(t, url, tc.args...).ok(t)
			assertProto(t, tc.want, fake.only(t, tc.method))
		})
	}
}

// TestModifyPartialListener: a change to part of the listener keeps the
// rest of the current one and guards with the generation it read.
func TestModifyPartialListener(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantGen uint64
	}{
		{"generation read", []string{"dn", "modify", "dn0", "--traddr", "10.0.0.7"}, 7},
		{"generation given", []string{"dn", "modify", "dn0", "--traddr", "10.0.0.7", "--generation", "5"}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, url := newFake(t)
			on(fake, "GetDn", func(_ context.Context, req *vdav1.GetDnRequest) (*vdav1.GetDnResponse, error) {
				return &vdav1.GetDnResponse{Dn: &vdav1.Dn{Name: req.GetName(), Generation: 7,
					Listener: tcpListener("10.0.0.1", "4420")}}, nil
			})
			vdactl(t, url, tc.args...).ok(t)
			calls := fake.received()
			require.Len(t, calls, 2)
			assertProto(t, &vdav1.GetDnRequest{Name: "dn0"}, calls[0].req)
			assertProto(t, &vdav1.ModifyDnRequest{
				Name: "dn0", Generation: &tc.wantGen, Listener: tcpListener("10.0.0.7", "4420"),
			}, calls[1].req)
		})
	}
}

// TestLocalErrors: bad command lines fail before any call.
func TestLocalErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"pd create no backend", []string{"pd", "create", "--dn", "dn0", "pd0"}, "exactly one backend"},
		{"pd create two backends", []string{"pd", "create", "--dn", "dn0", "pd0", "--malloc-size", "1GiB", "--aio-path", "/x"}, "exactly one backend"},
		{"pd create three backends", []string{"pd", "create", "--dn", "dn0", "pd0", "--malloc-size", "1GiB", "--aio-path", "/x", "--nvme-pcie", "0000:00:00.0"}, "exactly one backend"},
		{"pd create bad size", []string{"pd", "create", "--dn", "dn0", "pd0", "--malloc-size", "lots"}, `invalid size "lots"`},
		{"pd without dn", []string{"pd", "list"}, "--dn"},
		{"da create bad size", []string{"da", "create", "da0", "--size", "10XB"}, `unknown unit "XB"`},
		{"da create size overflow", []string{"da", "create", "da0", "--size", "17EiB"}, "too large"},
		{"da create without size", []string{"da", "create", "da0"}, "--size"},
		{"dn create without listener", []string{"dn", "create", "dn0", "--agent-address", "h:1"}, "--traddr"},
		{"exp create without host nqn", []string{"exp", "create", "--da", "da0", "exp0"}, "--host-nqn"},
		{"bad output", []string{"-o", "yaml", "dn", "list"}, "--output"},
		{"unknown command", []string{"disk", "list"}, "unexpected argument disk"},
		{"missing verb", []string{"dn"}, "expected one of"},
		{"bad portal", []string{"--portal", "ftp://x", "dn", "list"}, "scheme"},
		{"bad shell", []string{"completion", "tcsh"}, "tcsh"},
		{"token create without role", []string{"token", "create", "t0"}, "--role"},
		{"token create bad role", []string{"token", "create", "t0", "--role", "root"}, "--role"},
		{"syncup without name", []string{"dn", "syncup"}, "expected \"<name>\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, url := newFake(t)
			r := vdactl(t, url, tc.args...)
			require.Error(t, r.err)
			assert.Contains(t, r.stderr, "vdactl: error: ")
			assert.Contains(t, r.stderr, tc.wantErr)
			assert.Empty(t, r.stdout)
			assert.Empty(t, fake.received())
		})
	}
}

// TestPortalErrors: an error from the portal is printed with its code and
// message.
func TestPortalErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		method     string
		err        error
		wantStderr string
	}{
		{"failed precondition", []string{"dn", "delete", "dn0"}, "DeleteDn",
			connect.NewError(connect.CodeFailedPrecondition, errors.New("dn dn0 still has 2 pds")),
			"vdactl: failed_precondition: dn dn0 still has 2 pds\n"},
		{"not found", []string{"da", "get", "nope"}, "GetDa",
			connect.NewError(connect.CodeNotFound, errors.New("da nope not found")),
			"vdactl: not_found: da nope not found\n"},
		{"aborted", []string{"pd", "modify", "--dn", "dn0", "pd0", "--generation", "1", "--offline"}, "ModifyPd",
			connect.NewError(connect.CodeAborted, errors.New("pd pd0 is at generation 2")),
			"vdactl: aborted: pd pd0 is at generation 2\n"},
		{"list page", []string{"dn", "list"}, "ListDn",
			connect.NewError(connect.CodeUnavailable, errors.New("store down")),
			"vdactl: unavailable: store down\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, url := newFake(t)
			fake.handlers[tc.method] = func(context.Context, proto.Message) (proto.Message, error) { return nil, tc.err }
			r := vdactl(t, url, tc.args...)
			require.Error(t, r.err)
			assert.Equal(t, connect.CodeOf(tc.err), connect.CodeOf(r.err))
			assert.Equal(t, tc.wantStderr, r.stderr)
			assert.Empty(t, r.stdout)
		})
	}
}

func TestUnreachablePortal(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more
	r := vdactl(t, addr, "dn", "list")
	require.Error(t, r.err)
	assert.Equal(t, connect.CodeUnavailable, connect.CodeOf(r.err))
	assert.True(t, strings.HasPrefix(r.stderr, "vdactl: unavailable: "), r.stderr)
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	on(fake, "GetDn", func(ctx context.Context, _ *vdav1.GetDnRequest) (*vdav1.GetDnResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	r := vdactl(t, url, "--timeout", "50ms", "dn", "get", "dn0")
	require.Error(t, r.err)
	assert.Equal(t, connect.CodeDeadlineExceeded, connect.CodeOf(r.err))
	assert.Contains(t, r.stderr, "vdactl: deadline_exceeded: ")
}

// pagedDns makes the fake's ListDn answer three pages: dn0, dn1 and dn2.
func pagedDns(fake *fakePortal) {
	pages := map[string]struct {
		name, next string
	}{
		"":   {"dn0", "t1"},
		"t1": {"dn1", "t2"},
		"t2": {"dn2", ""},
	}
	on(fake, "ListDn", func(_ context.Context, req *vdav1.ListDnRequest) (*vdav1.ListDnResponse, error) {
		p, ok := pages[req.GetPageToken()]
		if !ok {
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("bad page token"))
		}
		return &vdav1.ListDnResponse{
			Dns:           []*vdav1.Dn{{Name: p.name, AgentAddress: p.name + ":9720", Listener: tcpListener("10.0.0.1", "4420")}},
			NextPageToken: p.next,
		}, nil
	})
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantReqs   []*vdav1.ListDnRequest
		wantNames  []string
		wantStderr string
	}{
		{
			name:      "all pages by default",
			args:      []string{"dn", "list"},
			wantReqs:  []*vdav1.ListDnRequest{{}, {PageToken: "t1"}, {PageToken: "t2"}},
			wantNames: []string{"dn0", "dn1", "dn2"},
		},
		{
			name:      "all with page size",
			args:      []string{"dn", "list", "--all", "--page-size", "1"},
			wantReqs:  []*vdav1.ListDnRequest{{PageSize: 1}, {PageSize: 1, PageToken: "t1"}, {PageSize: 1, PageToken: "t2"}},
			wantNames: []string{"dn0", "dn1", "dn2"},
		},
		{
			name:       "one page",
			args:       []string{"dn", "list", "--page-size", "1"},
			wantReqs:   []*vdav1.ListDnRequest{{PageSize: 1}},
			wantNames:  []string{"dn0"},
			wantStderr: "next page token: t1\n",
		},
		{
			name:      "from a token to the end",
			args:      []string{"dn", "list", "--page-token", "t1", "--all"},
			wantReqs:  []*vdav1.ListDnRequest{{PageToken: "t1"}, {PageToken: "t2"}},
			wantNames: []string{"dn1", "dn2"},
		},
		{
			name:      "the last page",
			args:      []string{"dn", "list", "--page-token", "t2"},
			wantReqs:  []*vdav1.ListDnRequest{{PageToken: "t2"}},
			wantNames: []string{"dn2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, url := newFake(t)
			pagedDns(fake)
			r := vdactl(t, url, tc.args...)
			require.NoError(t, r.err, r.stderr)
			assert.Equal(t, tc.wantStderr, r.stderr)
			calls := fake.received()
			require.Len(t, calls, len(tc.wantReqs))
			for i, want := range tc.wantReqs {
				assertProto(t, want, calls[i].req)
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			require.Len(t, lines, 1+len(tc.wantNames), r.stdout)
			for i, name := range tc.wantNames {
				assert.Equal(t, name, strings.Fields(lines[i+1])[0])
			}
		})
	}
}

func TestListPaginationJSON(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	pagedDns(fake)
	r := vdactl(t, url, "-o", "json", "dn", "list").ok(t)
	var got vdav1.ListDnResponse
	require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got.GetDns(), 3)
	assert.Equal(t, "dn2", got.GetDns()[2].GetName())
	assert.Empty(t, got.GetNextPageToken())
}

func TestListRepeatedToken(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	on(fake, "ListDa", func(context.Context, *vdav1.ListDaRequest) (*vdav1.ListDaResponse, error) {
		return &vdav1.ListDaResponse{Das: []*vdav1.Da{{Name: "da0"}}, NextPageToken: "again"}, nil
	})
	r := vdactl(t, url, "da", "list")
	require.Error(t, r.err)
	assert.Contains(t, r.stderr, `page token "again" twice`)
	assert.Len(t, fake.received(), 2)
}

func sampleDn() *vdav1.Dn {
	return &vdav1.Dn{
		Id: "dn-id-0", Name: "dn0", AgentAddress: "10.0.0.1:9720", Listener: tcpListener("10.0.0.1", "4420"),
		Location: "rack1", HashCode: 1234, Description: "first dn", Generation: 3, PdCount: 2,
		CreatedAtMs: 1700000000000,
		Status:      &vdav1.NodeStatus{Health: vdav1.Health_HEALTH_OK, ReportedAtMs: 1700000001000, AppliedGeneration: 3},
	}
}

func TestDnOutput(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	on(fake, "ListDn", func(context.Context, *vdav1.ListDnRequest) (*vdav1.ListDnResponse, error) {
		second := &vdav1.Dn{Name: "dn1", AgentAddress: "[fd00::1]:9720", Offline: true, Generation: 11,
			Listener: &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv6", Traddr: "fd00::1", Trsvcid: "4420"},
			Status:   &vdav1.NodeStatus{Health: vdav1.Health_HEALTH_FAILED}}
		return &vdav1.ListDnResponse{Dns: []*vdav1.Dn{sampleDn(), second}}, nil
	})
	on(fake, "GetDn", func(context.Context, *vdav1.GetDnRequest) (*vdav1.GetDnResponse, error) {
		return &vdav1.GetDnResponse{Dn: sampleDn()}, nil
	})

	r := vdactl(t, url, "dn", "list").ok(t)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 3, r.stdout)
	assert.Equal(t, []string{"NAME", "ADDRESS", "LISTENER", "LOCATION", "OFFLINE", "GEN", "HEALTH", "PDS"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"dn0", "10.0.0.1:9720", "tcp://10.0.0.1:4420", "rack1", "no", "3", "ok", "2"}, strings.Fields(lines[1]))
	assert.Equal(t, []string{"dn1", "[fd00::1]:9720", "tcp://[fd00::1]:4420", "-", "yes", "11", "failed", "0"}, strings.Fields(lines[2]))

	r = vdactl(t, url, "dn", "get", "dn0").ok(t)
	for _, want := range []string{
		"Name:               dn0\n",
		"ID:                 dn-id-0\n",
		"Agent address:      10.0.0.1:9720\n",
		"Listener:           trtype=tcp adrfam=ipv4 traddr=10.0.0.1 trsvcid=4420\n",
		"Hash code:          1234\n",
		"Health:             ok\n",
		"Created at:         2023-11-14T22:13:20Z\n",
		"PDs:                2\n",
	} {
		assert.Contains(t, r.stdout, want)
	}

	r = vdactl(t, url, "-o", "json", "dn", "get", "dn0").ok(t)
	assert.Contains(t, r.stdout, `"agent_address"`, "proto field names")
	assert.NotContains(t, r.stdout, `"offline"`, "unpopulated fields left out")
	var got vdav1.GetDnResponse
	require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &got))
	assertProto(t, &vdav1.GetDnResponse{Dn: sampleDn()}, &got)
}

func TestCreateAndDeleteOutput(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	on(fake, "CreateDn", func(_ context.Context, req *vdav1.CreateDnRequest) (*vdav1.CreateDnResponse, error) {
		return &vdav1.CreateDnResponse{Dn: &vdav1.Dn{Name: req.GetName(), Id: "new-id", Generation: 1}}, nil
	})
	r := vdactl(t, url, "dn", "create", "dn0", "--agent-address", "h:1", "--traddr", "127.0.0.1", "--trsvcid", "4420").ok(t)
	assert.Regexp(t, `(?m)^Name: +dn0$`, r.stdout)
	assert.Regexp(t, `(?m)^ID: +new-id$`, r.stdout)

	r = vdactl(t, url, "dn", "delete", "dn0").ok(t)
	assert.Equal(t, "dn dn0 deleted\n", r.stdout)

	r = vdactl(t, url, "-o", "json", "dn", "delete", "dn0").ok(t)
	assert.JSONEq(t, "{}", r.stdout)
}

func TestPdOutput(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	on(fake, "ListPd", func(context.Context, *vdav1.ListPdRequest) (*vdav1.ListPdResponse, error) {
		return &vdav1.ListPdResponse{Pds: []*vdav1.Pd{
			{Name: "pd0", DnName: "dn0", Backend: &vdav1.Pd_Malloc{Malloc: &vdav1.PdMalloc{Size: 1 << 30}},
				Capacity: 1 << 30, Allocated: 1 << 29, Generation: 2, VdCount: 1,
				Status: &vdav1.PdStatus{Health: vdav1.Health_HEALTH_OK}},
			{Name: "pd1", DnName: "dn0", Backend: &vdav1.Pd_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: "0000:3b:00.0"}},
				Status: &vdav1.PdStatus{Health: vdav1.Health_HEALTH_ERROR, Error: "no such device"}},
		}}, nil
	})
	r := vdactl(t, url, "pd", "list", "--dn", "dn0").ok(t)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 3, r.stdout)
	assert.Regexp(t, `^NAME +BACKEND +CAPACITY +ALLOCATED +OFFLINE +GEN +HEALTH +VDS$`, lines[0])
	assert.Regexp(t, `^pd0 +malloc 1\.0 GiB +1\.0 GiB +512\.0 MiB +no +2 +ok +1$`, lines[1])
	assert.Regexp(t, `^pd1 +nvme 0000:3b:00\.0 +0 B +0 B +no +0 +error +0$`, lines[2])
}

func sampleDa() *vdav1.Da {
	return &vdav1.Da{
		Id: "da-id", Name: "da0", Size: 10 << 30, Raid: &vdav1.Da_Raid0{Raid0: &vdav1.Raid0{VdCount: 2, StripSizeKb: 64}},
		CntlrCount: 2, Generation: 4, Nqn: "nqn.2016-06.io.vda:da-da-id", Health: vdav1.Health_HEALTH_OK,
		Vds: []*vdav1.Vd{
			{Index: 0, DnName: "dn0", PdName: "pd0", Size: 5 << 30, Status: &vdav1.Status{Health: vdav1.Health_HEALTH_OK}},
			{Index: 1, DnName: "dn1", PdName: "pd3", Size: 5 << 30, Status: &vdav1.Status{Health: vdav1.Health_HEALTH_UNKNOWN}},
		},
		Cntlrs: []*vdav1.Cntlr{
			{Id: "cntlr-id-0", Index: 0, CnName: "cn0", Role: vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, Listener: tcpListener("10.0.1.1", "4420"),
				Status: &vdav1.Status{Health: vdav1.Health_HEALTH_OK}},
			{Id: "cntlr-id-1", Index: 1, CnName: "cn1", Role: vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, Listener: tcpListener("10.0.1.2", "4420"),
				Status: &vdav1.Status{Health: vdav1.Health_HEALTH_ERROR, Error: "cannot reach primary"}},
		},
	}
}

func TestDaOutput(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	on(fake, "GetDa", func(context.Context, *vdav1.GetDaRequest) (*vdav1.GetDaResponse, error) {
		return &vdav1.GetDaResponse{Da: sampleDa()}, nil
	})
	on(fake, "ListDa", func(context.Context, *vdav1.ListDaRequest) (*vdav1.ListDaResponse, error) {
		da := sampleDa()
		da.Vds, da.Cntlrs = nil, nil
		return &vdav1.ListDaResponse{Das: []*vdav1.Da{da}}, nil
	})

	r := vdactl(t, url, "da", "get", "da0").ok(t)
	assert.Regexp(t, `(?m)^Size: +10\.0 GiB \(10737418240 bytes\)$`, r.stdout)
	assert.Regexp(t, `(?m)^NQN: +nqn\.2016-06\.io\.vda:da-da-id$`, r.stdout)
	vds, cntlrs, ok := strings.Cut(r.stdout, "\nCNTLRS:\n")
	require.True(t, ok, r.stdout)
	_, vds, ok = strings.Cut(vds, "\nVDs:\n")
	require.True(t, ok, r.stdout)
	vdLines := strings.Split(strings.TrimRight(vds, "\n"), "\n")
	require.Len(t, vdLines, 3, vds)
	assert.Regexp(t, `^INDEX +DN +PD +SIZE +HEALTH +ERROR$`, vdLines[0])
	assert.Regexp(t, `^0 +dn0 +pd0 +5\.0 GiB +ok +-$`, vdLines[1])
	assert.Regexp(t, `^1 +dn1 +pd3 +5\.0 GiB +unknown +-$`, vdLines[2])
	cnLines := strings.Split(strings.TrimRight(cntlrs, "\n"), "\n")
	require.Len(t, cnLines, 3, cntlrs)
	assert.Regexp(t, `^INDEX +ID +CN +ROLE +LISTENER +HEALTH +ERROR$`, cnLines[0])
	assert.Regexp(t, `^0 +cntlr-id-0 +cn0 +primary +tcp://10\.0\.1\.1:4420 +ok +-$`, cnLines[1])
	assert.Regexp(t, `^1 +cntlr-id-1 +cn1 +secondary +tcp://10\.0\.1\.2:4420 +error +cannot reach primary$`, cnLines[2])

	r = vdactl(t, url, "da", "list").ok(t)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 2, r.stdout)
	assert.Regexp(t, `^NAME +SIZE +RAID +VDS +CNTLRS +GEN +HEALTH$`, lines[0])
	assert.Regexp(t, `^da0 +10\.0 GiB +raid0 +2 +2 +4 +ok$`, lines[1])
}

func TestNodeEventsOutput(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	events := []*vdav1.NodeEvent{
		{AtMs: 1700000180000, From: "failed", To: "failover", Reason: "da 0a1b: secondary cntlr 1 on cn1 is usable", Monitor: "mon-b"},
		{AtMs: 1700000120000, From: "suspect", To: "failed", Reason: "missed 3 heartbeats:\ndial tcp: refused", Monitor: "mon-a"},
		{AtMs: 1700000000000, From: "alive", To: "suspect"},
	}
	on(fake, "ListCnEvents", func(context.Context, *vdav1.ListNodeEventsRequest) (*vdav1.ListNodeEventsResponse, error) {
		return &vdav1.ListNodeEventsResponse{Events: events}, nil
	})
	on(fake, "ListDnEvents", func(context.Context, *vdav1.ListNodeEventsRequest) (*vdav1.ListNodeEventsResponse, error) {
		return &vdav1.ListNodeEventsResponse{}, nil
	})

	r := vdactl(t, url, "cn", "events", "cn0").ok(t)
	assert.Equal(t, ""+
		"TIME                  CHANGE             MONITOR  REASON\n"+
		"2023-11-14T22:16:20Z  failed → failover  mon-b    da 0a1b: secondary cntlr 1 on cn1 is usable\n"+
		"2023-11-14T22:15:20Z  suspect → failed   mon-a    missed 3 heartbeats: dial tcp: refused\n"+
		"2023-11-14T22:13:20Z  alive → suspect    -        -\n",
		r.stdout)

	r = vdactl(t, url, "dn", "events", "dn0").ok(t)
	assert.Equal(t, "TIME  CHANGE  MONITOR  REASON\n", r.stdout, "no events: the header alone")

	r = vdactl(t, url, "-o", "json", "cn", "events", "cn0").ok(t)
	assert.Contains(t, r.stdout, `"at_ms"`, "proto field names")
	var got vdav1.ListNodeEventsResponse
	require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &got))
	assertProto(t, &vdav1.ListNodeEventsResponse{Events: events}, &got)
}

func TestExpOutput(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	on(fake, "GetExp", func(_ context.Context, req *vdav1.GetExpRequest) (*vdav1.GetExpResponse, error) {
		return &vdav1.GetExpResponse{Exp: &vdav1.Exp{
			Name: req.GetName(), DaName: req.GetDaName(), HostNqn: "nqn.2014-08.org.example:host1",
			TargetNqn: "nqn.2016-06.io.vda:da-abc", Generation: 1,
			Paths: []*vdav1.ExpPath{
				{CnName: "cn0", Role: vdav1.CntlrRole_CNTLR_ROLE_PRIMARY, Listener: tcpListener("10.0.1.1", "4420"),
					Status: &vdav1.Status{Health: vdav1.Health_HEALTH_OK}},
				{CnName: "cn1", Role: vdav1.CntlrRole_CNTLR_ROLE_SECONDARY, Listener: tcpListener("10.0.1.2", "4421")},
			},
		}}, nil
	})
	r := vdactl(t, url, "exp", "get", "--da", "da0", "exp0").ok(t)
	assert.Regexp(t, `(?m)^Target NQN: +nqn\.2016-06\.io\.vda:da-abc$`, r.stdout)
	assert.Regexp(t, `(?m)^cn0 +primary +tcp://10\.0\.1\.1:4420 +ok +-$`, r.stdout)
	assert.Regexp(t, `(?m)^cn1 +secondary +tcp://10\.0\.1\.2:4421 +- +-$`, r.stdout)
	assert.Contains(t, r.stdout,
		"  nvme connect -t tcp -a 10.0.1.1 -s 4420 -n nqn.2016-06.io.vda:da-abc --hostnqn nqn.2014-08.org.example:host1\n")
	assert.Contains(t, r.stdout,
		"  nvme connect -t tcp -a 10.0.1.2 -s 4421 -n nqn.2016-06.io.vda:da-abc --hostnqn nqn.2014-08.org.example:host1\n")
	assertProto(t, &vdav1.GetExpRequest{DaName: "da0", Name: "exp0"}, fake.only(t, "GetExp"))
}

func TestClusterSummaryOutput(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	on(fake, "GetClusterSummary", func(context.Context, *vdav1.GetClusterSummaryRequest) (*vdav1.GetClusterSummaryResponse, error) {
		return &vdav1.GetClusterSummaryResponse{Summary: &vdav1.ClusterSummary{
			DnCount: 3, PdCount: 6, CnCount: 2, DaCount: 1, Capacity: 3 << 40, Allocated: 1 << 40, Free: 2 << 40,
			NodesInError: []*vdav1.NodeInError{
				{Kind: "dn", Name: "dn2", Status: &vdav1.NodeStatus{Health: vdav1.Health_HEALTH_FAILED, Error: "missed heartbeats"}},
			},
		}}, nil
	})
	r := vdactl(t, url, "cluster", "summary").ok(t)
	assert.Regexp(t, `(?m)^Disk nodes: +3$`, r.stdout)
	assert.Regexp(t, `(?m)^Capacity: +3\.0 TiB$`, r.stdout)
	assert.Regexp(t, `(?m)^dn +dn2 +failed +- +missed heartbeats$`, r.stdout)

	r = vdactl(t, url, "-o", "json", "cluster", "summary").ok(t)
	var got vdav1.GetClusterSummaryResponse
	require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &got))
	assert.Equal(t, uint32(3), got.GetSummary().GetDnCount())
}

func TestPortalFromEnv(t *testing.T) {
	// Not parallel: it sets the environment.
	fake, url := newFake(t)
	t.Setenv("VDA_PORTAL", strings.TrimPrefix(url, "http://"))
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"dn", "get", "dn0"}, &stdout, &stderr), stderr.String())
	assertProto(t, &vdav1.GetDnRequest{Name: "dn0"}, fake.only(t, "GetDn"))
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "Usage: vdactl <command>"},
		{"help", []string{"--help"}, "Usage: vdactl <command>"},
		{"command help", []string{"pd", "create", "-h"}, "--malloc-size=SIZE"},
		{"version", []string{"version"}, "vdactl dev\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			require.NoError(t, run(t.Context(), tc.args, &stdout, &stderr))
			assert.Contains(t, stdout.String(), tc.want)
			assert.Empty(t, stderr.String())
		})
	}
}
