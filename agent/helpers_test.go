package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
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

func run(t *testing.T, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dump renders every object of an SPDK application that VDA cares about,
// one line each, sorted, with generated uuids replaced by the names that
// identify them, so that tests compare whole states exactly.
func dump(t *testing.T, c *spdk.Client) []string {
	t.Helper()
	ctx := ctxT(t)
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	bdevs, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{})
	require.NoError(t, err)
	name := map[string]string{} // canonical name -> readable name
	for _, b := range bdevs {
		name[b.Name] = b.Name
		if b.ProductName == "Logical Volume" && len(b.Aliases) > 0 {
			name[b.Name] = b.Aliases[0]
		}
	}
	for _, b := range bdevs {
		claim := ""
		if b.Claimed {
			claim = " claimed=" + b.ClaimType
		}
		add("bdev %s %q %d*%d%s", name[b.Name], b.ProductName, b.NumBlocks, b.BlockSize, claim)
	}
	lvss, err := c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{})
	require.NoError(t, err)
	for _, l := range lvss {
		add("lvstore %s on %s cluster=%d clusters=%d", l.Name, name[l.BaseBdev], l.ClusterSize, l.TotalDataClusters)
	}
	lvols, err := c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsRequest{})
	require.NoError(t, err)
	for _, l := range lvols {
		add("lvol %s thin=%v", l.Alias, l.IsThinProvisioned)
	}
	ctrlrs, err := c.BdevNvmeGetControllers(ctx, "")
	require.NoError(t, err)
	for _, ct := range ctrlrs {
		for _, p := range ct.Ctrlrs {
			add("nvme %s -> %s:%s %s as %s %s", ct.Name, p.Trid.Traddr, p.Trid.Trsvcid, p.Trid.Subnqn, p.Host.NQN, p.State)
		}
	}
	raids, err := c.BdevRaidGetBdevs(ctx, spdk.RaidAll)
	require.NoError(t, err)
	for _, r := range raids {
		var ms []string
		for _, m := range r.BaseBdevsList {
			if m.Name == nil {
				ms = append(ms, "<nil>")
			} else {
				ms = append(ms, *m.Name)
			}
		}
		add("raid %s %s strip=%d %s [%s]", r.Name, r.RaidLevel, r.StripSizeKB, r.State, strings.Join(ms, " "))
	}
	trs, err := c.NvmfGetTransports(ctx, "")
	require.NoError(t, err)
	for _, tr := range trs {
		add("transport %s", tr.Trtype)
	}
	subs, err := c.NvmfGetSubsystems(ctx, "")
	require.NoError(t, err)
	for _, s := range subs {
		if s.Subtype == "Discovery" {
			continue
		}
		add("subsystem %s serial=%s model=%q any=%v", s.NQN, s.SerialNumber, s.ModelNumber, s.AllowAnyHost)
		for _, ns := range s.Namespaces {
			add("  ns %s %d %s uuid=%s nguid=%s", s.NQN, ns.NSID, name[ns.BdevName], ns.UUID, ns.NGUID)
		}
		ls, err := c.NvmfSubsystemGetListeners(ctx, s.NQN)
		require.NoError(t, err)
		for _, l := range ls {
			ana := ""
			if len(l.AnaStates) > 0 {
				ana = " ana=" + l.AnaStates[0].AnaState
			}
			add("  listener %s %s %s:%s%s", s.NQN, l.Address.Adrfam, l.Address.Traddr, l.Address.Trsvcid, ana)
		}
		for _, h := range s.Hosts {
			add("  host %s %s", s.NQN, h.NQN)
		}
	}
	slices.Sort(out)
	return out
}

// fake starts a fake SPDK application.
func fake(t *testing.T) *spdktest.Server {
	return spdktest.Start(t, spdkCfg())
}
