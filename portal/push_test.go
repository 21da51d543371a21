package portal_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/portal"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// slowPusher records pushes and holds each until released.
type slowPusher struct {
	release chan struct{}
	mu      sync.Mutex
	pushed  []string
}

func (p *slowPusher) record(what string) {
	<-p.release
	p.mu.Lock()
	p.pushed = append(p.pushed, what)
	p.mu.Unlock()
}

func (p *slowPusher) PushDN(_ context.Context, id vda.DNID) (*vdav1.DnReport, error) {
	p.record("dn " + string(id))
	return &vdav1.DnReport{}, nil
}

func (p *slowPusher) PushCN(_ context.Context, id vda.CNID) (*vdav1.CnReport, error) {
	p.record("cn " + string(id))
	return &vdav1.CnReport{}, nil
}

// TestPushDoesNotHoldTheCall: a change answers after PushWait even if the
// agents are slow; the push finishes in the background and Close waits
// for it.
func TestPushDoesNotHoldTheCall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		p := &slowPusher{release: make(chan struct{})}
		svc, err := portal.New(portal.Config{DB: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Pusher: p, PushWait: 50 * time.Millisecond})
		require.NoError(t, err)
		start := time.Now()
		resp, err := svc.CreateDn(t.Context(), connect.NewRequest(&vdav1.CreateDnRequest{
			Name: "dn1", AgentAddress: "127.0.0.1:9720",
			Listener: &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: "127.0.0.1", Trsvcid: "4420"},
		}))
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 10*time.Second, "the call did not wait for the agent")
		p.mu.Lock()
		assert.Empty(t, p.pushed, "the push is still held")
		p.mu.Unlock()

		closed := make(chan struct{})
		go func() { svc.Close(); close(closed) }()
		select {
		case <-closed:
			t.Fatal("Close returned with a push in flight")
		case <-time.After(50 * time.Millisecond):
		}
		close(p.release)
		<-closed
		assert.Equal(t, []string{"dn " + resp.Msg.GetDn().GetId()}, p.pushed)
	})
}
