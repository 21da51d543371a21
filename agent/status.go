package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/spdk"
)

// Status is an agent's heartbeat: whether it and its SPDK application are
// alive, what it has applied, and what SPDK reports now.
type Status struct {
	AppliedGeneration uint64
	SPDKReachable     bool
	SPDKVersion       string
	SPDKError         string
	StartedAt         time.Time
	// PDs (dn only): each VDA lvstore's capacity.
	PDs []PDReport
	// Iostats of the VDA-owned bdevs: lvols on a dn (named by their
	// "lvs/lvol" alias), arrays' top bdevs on a cn.
	Iostats []spdk.BdevStats
	// ResyncNeeded says the SPDK socket was dialled again since the last
	// reconcile: SPDK may have restarted and lost what the agent built.
	ResyncNeeded bool
}

// status asks SPDK for what a heartbeat reports. An unreachable SPDK is
// part of the answer, not an error of the call.
func (c *core) status(ctx context.Context, applied uint64) Status {
	st := Status{AppliedGeneration: applied, StartedAt: c.started}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	if err := c.readStatus(ctx, &st); err != nil {
		st.SPDKError = err.Error()
	}
	// After the calls above, which dial a dropped socket again.
	st.ResyncNeeded = applied > 0 && c.epoch() != c.reconciledEpoch.Load()
	return st
}

func (c *core) readStatus(ctx context.Context, st *Status) error {
	v, err := c.c.SpdkGetVersion(ctx)
	if err != nil {
		return err
	}
	st.SPDKReachable, st.SPDKVersion = true, v.Version
	io, err := c.c.BdevGetIostat(ctx, spdk.BdevGetIostatRequest{})
	if err != nil {
		return fmt.Errorf("iostat: %w", err)
	}
	if c.obs.cn {
		for _, b := range io.Bdevs {
			if strings.HasPrefix(b.Name, raidPrefix) || strings.HasPrefix(b.Name, priPrefix) {
				st.Iostats = append(st.Iostats, b)
			}
		}
		return nil
	}
	lvss, err := c.c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{})
	if err != nil {
		return fmt.Errorf("lvstores: %w", err)
	}
	for _, l := range lvss {
		if id, ok := strings.CutPrefix(l.Name, lvsPrefix); ok {
			st.PDs = append(st.PDs, PDReport{ID: vda.PDID(id), Capacity: l.TotalDataClusters * l.ClusterSize, Free: l.FreeBytes()})
		}
	}
	lvols, err := c.c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsRequest{})
	if err != nil {
		return fmt.Errorf("lvols: %w", err)
	}
	alias := map[string]string{}
	for _, l := range lvols {
		if strings.HasPrefix(l.Lvs.Name, lvsPrefix) && strings.HasPrefix(l.Name, lvolPrefix) {
			alias[l.UUID] = l.Alias
		}
	}
	for _, b := range io.Bdevs {
		if a, ok := alias[b.Name]; ok {
			b.Name = a
			st.Iostats = append(st.Iostats, b)
		}
	}
	return nil
}

// Status reports the dn agent's heartbeat.
func (a *DNAgent) Status(ctx context.Context) Status { return a.status(ctx, a.AppliedGeneration()) }

// Status reports the cn agent's heartbeat.
func (a *CNAgent) Status(ctx context.Context) Status { return a.status(ctx, a.AppliedGeneration()) }
