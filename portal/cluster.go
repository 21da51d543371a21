package portal

import (
	"context"
	"errors"
	"sort"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

func (s *Service) GetClusterSummary(ctx context.Context, _ *connect.Request[vdav1.GetClusterSummaryRequest]) (*connect.Response[vdav1.GetClusterSummaryResponse], error) {
	sum := &vdav1.ClusterSummary{}
	err := s.db.View(ctx, func(ctx context.Context, tx *store.Tx) error {
		c, err := tx.Counts(ctx)
		if err != nil {
			return err
		}
		sum.DnCount, sum.PdCount, sum.CnCount = uint32(c.DNs), uint32(c.PDs), uint32(c.CNs)
		sum.DaCount, sum.ExpCount, sum.VdCount, sum.CntlrCount = uint32(c.DAs), uint32(c.Exps), uint32(c.VDs), uint32(c.Cntlrs)
		inv, err := readInventory(ctx, tx, 0, 0)
		if err != nil {
			return err
		}
		for _, p := range inv.pds {
			capacity := pdCapacity(p.PD, store.PDStatus{Capacity: p.ReportedCapacity})
			sum.Capacity += capacity
			sum.Allocated += p.PD.Allocated
			sum.Free += free(p)
		}
		for _, p := range inv.pdCandidates() {
			if p.Online {
				sum.OnlineFree += p.Free
			}
		}
		bad := func(h store.Health) bool { return h == store.HealthError || h == store.HealthFailed }
		dns, err := tx.DNs(ctx, store.Page{})
		if err != nil {
			return err
		}
		sts, err := tx.NodeStatuses(ctx)
		if err != nil {
			return err
		}
		for _, dn := range dns {
			if st := sts[string(dn.ID)]; bad(st.Health) {
				sum.NodesInError = append(sum.NodesInError, &vdav1.NodeInError{Kind: "dn", Name: dn.Name, Status: nodeStatusOf(st)})
			}
		}
		for _, cn := range inv.cns {
			if st := sts[string(cn.CN.ID)]; bad(st.Health) {
				sum.NodesInError = append(sum.NodesInError, &vdav1.NodeInError{Kind: "cn", Name: cn.CN.Name, Status: nodeStatusOf(st)})
			}
		}
		sort.Slice(sum.NodesInError, func(i, j int) bool {
			a, b := sum.NodesInError[i], sum.NodesInError[j]
			return a.Kind < b.Kind || a.Kind == b.Kind && a.Name < b.Name
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&vdav1.GetClusterSummaryResponse{Summary: sum}), nil
}

func isNotFound(err error) bool { return errors.Is(err, vda.ErrNotFound) }
