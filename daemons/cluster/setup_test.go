package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// nodesPortal answers ListDn and ListCn with fixed names.
type nodesPortal struct {
	vdav1connect.UnimplementedPortalServiceHandler
	dns, cns []string
}

func (p nodesPortal) ListDn(context.Context, *connect.Request[vdav1.ListDnRequest]) (*connect.Response[vdav1.ListDnResponse], error) {
	r := &vdav1.ListDnResponse{}
	for _, n := range p.dns {
		r.Dns = append(r.Dns, &vdav1.Dn{Name: n})
	}
	return connect.NewResponse(r), nil
}

func (p nodesPortal) ListCn(context.Context, *connect.Request[vdav1.ListCnRequest]) (*connect.Response[vdav1.ListCnResponse], error) {
	r := &vdav1.ListCnResponse{}
	for _, n := range p.cns {
		r.Cns = append(r.Cns, &vdav1.Cn{Name: n})
	}
	return connect.NewResponse(r), nil
}

// TestWarnUnstarted: a rerun with fewer nodes than the store holds names
// the ones it does not start; one with as many says nothing.
func TestWarnUnstarted(t *testing.T) {
	c := &cli{DNs: 2, CNs: 1, StateDir: t.TempDir(), BasePort: 9700, NvmeBasePort: 4420, PortalListen: "127.0.0.1:9520"}
	l, err := plan(c)
	require.NoError(t, err)
	for _, tc := range []struct {
		dns, cns []string
		want     string
	}{
		{[]string{"dn0", "dn1"}, []string{"cn0"}, ""},
		{[]string{"dn0", "dn1", "dn2"}, []string{"cn0", "cn1"}, "nodes=\"dn2, cn1\""},
	} {
		mux := http.NewServeMux()
		mux.Handle(vdav1connect.NewPortalServiceHandler(nodesPortal{dns: tc.dns, cns: tc.cns}))
		srv := httptest.NewServer(mux)
		var logs bytes.Buffer
		err := warnUnstarted(context.Background(), vdav1connect.NewPortalServiceClient(srv.Client(), srv.URL), l,
			slog.New(slog.NewTextHandler(&logs, nil)))
		srv.Close()
		require.NoError(t, err)
		if tc.want == "" {
			assert.Empty(t, logs.String())
			continue
		}
		assert.Contains(t, logs.String(), "the store holds nodes this run does not start")
		assert.Contains(t, logs.String(), tc.want)
	}
}
