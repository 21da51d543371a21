package main

import (
	"context"

	"connectrpc.com/connect"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// ClusterCmd groups the commands about the whole cluster.
type ClusterCmd struct {
	Summary ClusterSummaryCmd `cmd:"" help:"Count what the cluster holds and name the nodes in error."`
}

// ClusterSummaryCmd is vdactl cluster summary.
type ClusterSummaryCmd struct{}

// Run calls GetClusterSummary.
func (s *ClusterSummaryCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.GetClusterSummary(ctx, connect.NewRequest(&vdav1.GetClusterSummaryRequest{}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	sum := resp.Msg.GetSummary()
	err = printFields(c.Stdout, []field{
		{"Disk nodes", fmtUint(sum.GetDnCount())},
		{"Physical disks", fmtUint(sum.GetPdCount())},
		{"Controller nodes", fmtUint(sum.GetCnCount())},
		{"Disk arrays", fmtUint(sum.GetDaCount())},
		{"Exporters", fmtUint(sum.GetExpCount())},
		{"Virtual disks", fmtUint(sum.GetVdCount())},
		{"Controllers", fmtUint(sum.GetCntlrCount())},
		{"Capacity", FormatSize(sum.GetCapacity())},
		{"Allocated", FormatSize(sum.GetAllocated())},
		{"Free", FormatSize(sum.GetFree())},
		{"Online free", FormatSize(sum.GetOnlineFree())},
	})
	if err != nil {
		return err
	}
	t := newTable("KIND", "NAME", "HEALTH", "REPORTED", "ERROR")
	for _, n := range sum.GetNodesInError() {
		t.add(n.GetKind(), n.GetName(), fmtHealth(n.GetStatus().GetHealth()),
			fmtTime(n.GetStatus().GetReportedAtMs()), n.GetStatus().GetError())
	}
	return printSection(c.Stdout, "Nodes in error", t)
}
