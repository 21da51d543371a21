package portal

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// Pusher delivers a node's whole desired state to its agent and records
// what it reports; *syncup.Pusher is the implementation. Errors are the
// pusher's to log: the portal only waits.
type Pusher interface {
	PushDN(ctx context.Context, id vda.DNID) (*vdav1.DnReport, error)
	PushCN(ctx context.Context, id vda.CNID) (*vdav1.CnReport, error)
}

// push delivers the new desired state of every node a committed change
// touched, best effort: dns first (a primary cannot attach a vd before its
// dn exports it), then cns, then once more the cns that reported an error
// (a secondary cannot attach its primary before the primary's cn exports).
// The API call waits at most PushWait; the pushes go on in the background,
// bounded by the pusher's own timeout, and Close waits for them. It reports
// whether every push finished in time.
func (s *Service) push(ctx context.Context, t *touch) bool {
	if s.pusher == nil || t == nil || len(t.dns)+len(t.cns) == 0 {
		return false
	}
	dns := slices.Sorted(maps.Keys(t.dns))
	cns := slices.Sorted(maps.Keys(t.cns))
	done := make(chan struct{})
	s.pushes.Add(1)
	go func() {
		defer s.pushes.Done()
		defer close(done)
		// The pushes outlive the request that caused them.
		bg := context.WithoutCancel(ctx)
		each(dns, func(id vda.DNID) bool { return s.pushDN(bg, id) })
		failed := each(cns, func(id vda.CNID) bool { return s.pushCN(bg, id) })
		each(failed, func(id vda.CNID) bool { return s.pushCN(bg, id) })
	}()
	timer := time.NewTimer(s.pushWait)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}

// each runs f for every id at once and returns the ids for which it
// failed.
func each[ID comparable](ids []ID, f func(ID) bool) []ID {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []ID
	)
	for _, id := range ids {
		wg.Go(func() {
			if !f(id) {
				mu.Lock()
				failed = append(failed, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

func (s *Service) pushDN(ctx context.Context, id vda.DNID) bool {
	rep, err := s.pusher.PushDN(ctx, id)
	return s.pushed(ctx, "dn", string(id), err, rep.GetError() == "" && allOK(rep.GetPds(), rep.GetVds()))
}

func (s *Service) pushCN(ctx context.Context, id vda.CNID) bool {
	rep, err := s.pusher.PushCN(ctx, id)
	return s.pushed(ctx, "cn", string(id), err, rep.GetError() == "" && allOK(nil, rep.GetCntlrs()))
}

func (s *Service) pushed(ctx context.Context, kind, id string, err error, ok bool) bool {
	switch {
	case err != nil && isStale(err):
		// A newer change is being pushed by whoever made it.
		s.log.DebugContext(ctx, "push superseded", "kind", kind, "id", id, "error", err)
		return true
	case err != nil:
		// The monitor delivers what the portal could not.
		s.log.WarnContext(ctx, "push failed", "kind", kind, "id", id, "error", err)
		return false
	}
	return ok
}

func allOK(pds []*vdav1.PdReport, rs []*vdav1.ResourceReport) bool {
	for _, p := range pds {
		if p.GetError() != "" {
			return false
		}
	}
	for _, r := range rs {
		if r.GetError() != "" {
			return false
		}
	}
	return true
}

// isStale says whether a push failed only because something newer exists
// (the agent applied a newer generation, or the store's moved on).
func isStale(err error) bool {
	return errors.Is(err, vda.ErrStaleGeneration) || connect.CodeOf(err) == connect.CodeFailedPrecondition
}

// Close waits for the pushes still running in the background. Call it
// after the server stops taking calls, before closing the store.
func (s *Service) Close() {
	s.pushes.Wait()
}
