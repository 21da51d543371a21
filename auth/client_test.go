package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/auth"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

type whoami struct {
	vdav1connect.UnimplementedPortalServiceHandler
	got chan string
}

func (w whoami) WhoAmI(_ context.Context, req *connect.Request[vdav1.WhoAmIRequest]) (*connect.Response[vdav1.WhoAmIResponse], error) {
	w.got <- req.Header().Get("Authorization")
	return connect.NewResponse(&vdav1.WhoAmIResponse{}), nil
}

// TestWithBearer: a client with WithBearer sends the token on every call,
// over Connect and gRPC; an empty token sends no header at all.
func TestWithBearer(t *testing.T) {
	h := whoami{got: make(chan string, 1)}
	mux := http.NewServeMux()
	mux.Handle(vdav1connect.NewPortalServiceHandler(h))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	for _, tc := range []struct {
		token, want string
	}{{"vda_abc_def", "Bearer vda_abc_def"}, {"", ""}} {
		for _, opt := range []connect.ClientOption{connect.WithProtoJSON(), connect.WithGRPC()} {
			c := vdav1connect.NewPortalServiceClient(srv.Client(), srv.URL, opt, auth.WithBearer(tc.token))
			_, err := c.WhoAmI(context.Background(), connect.NewRequest(&vdav1.WhoAmIRequest{}))
			require.NoError(t, err)
			assert.Equal(t, tc.want, <-h.got)
		}
	}
}
