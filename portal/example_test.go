package portal_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/portal/portaltest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// ExampleNewHandler runs a portal inside a program, on an SQLite file, and
// calls it as a Connect client would, with the admin token the portal
// made for itself.
func ExampleNewHandler() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "vda-example")
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	db, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(dir, "vda.db"), Logger: log})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	svc, err := portal.New(portal.Config{DB: db, Logger: log})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The first admin token: made once, kept in a file only its owner reads.
	tokenFile := filepath.Join(dir, "admin.token")
	if _, err := portal.EnsureAdminToken(ctx, db, tokenFile); err != nil {
		fmt.Println(err)
		return
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		fmt.Println(err)
		return
	}
	handler, err := portal.NewHandler(svc, portal.HandlerConfig{Registerer: prometheus.NewRegistry()})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- portal.Serve(ctx, ln, handler, time.Second) }()

	client := vdav1connect.NewPortalServiceClient(http.DefaultClient, "http://"+ln.Addr().String(),
		portaltest.WithToken(strings.TrimSpace(string(token))))
	dn0 := &vdav1.CreateDnRequest{
		Name: "dn0", AgentAddress: "10.0.0.1:9720",
		Listener: &vdav1.NvmfListener{Traddr: "10.0.0.1", Trsvcid: "4420"},
	}
	_, err = client.CreateDn(ctx, connect.NewRequest(dn0))
	fmt.Println("create dn0:", err)
	_, err = client.CreateDn(ctx, connect.NewRequest(dn0))
	fmt.Println("again:", connect.CodeOf(err))
	_, err = vdav1connect.NewPortalServiceClient(http.DefaultClient, "http://"+ln.Addr().String()).
		CreateDn(ctx, connect.NewRequest(dn0))
	fmt.Println("without a token:", connect.CodeOf(err))

	cancel()
	fmt.Println("served:", <-served)
	// Output:
	// create dn0: <nil>
	// again: already_exists
	// without a token: unauthenticated
	// served: <nil>
}
