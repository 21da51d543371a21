package agent_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/agent"
	"github.com/virtual-disk-array/vda/spdk"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runDN starts a dn agent over caller until the test ends.
func runDN(t *testing.T, caller spdk.Caller) *agent.DNAgent {
	t.Helper()
	a, err := agent.NewDN(agent.Config{SPDK: caller, Logger: quiet()})
	require.NoError(t, err)
	run(t, a.Run)
	return a
}

// runCN starts a cn agent over caller until the test ends.
func runCN(t *testing.T, caller spdk.Caller) *agent.CNAgent {
	t.Helper()
	a, err := agent.NewCN(agent.Config{SPDK: caller, Logger: quiet()})
	require.NoError(t, err)
	run(t, a.Run)
	return a
}

func run(t testing.TB, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dump lists every object of an SPDK application, one line each.
func dump(t *testing.T, c *spdk.Client) []string {
	t.Helper()
	out, err := spdktest.Dump(ctxT(t), c)
	require.NoError(t, err)
	return out
}

// fake starts a fake SPDK application.
func fake(t *testing.T) *spdktest.Server {
	return spdktest.Start(t, spdkCfg())
}
