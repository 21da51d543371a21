package main

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// CnCmd groups the controller node commands.
type CnCmd struct {
	Create CnCreateCmd `cmd:"" help:"Create a controller node."`
	Delete CnDeleteCmd `cmd:"" help:"Delete a controller node; it must hold no controllers."`
	Modify CnModifyCmd `cmd:"" help:"Change a controller node; only the flags given change."`
	List   CnListCmd   `cmd:"" help:"List controller nodes."`
	Get    CnGetCmd    `cmd:"" help:"Show a controller node."`
	Events CnEventsCmd `cmd:"" help:"Show the monitors' log of a controller node's state changes, newest first."`
	Syncup CnSyncupCmd `cmd:"" help:"Push a controller node's desired state to its agent now and show its report (admin)."`
}

// CnCreateCmd is vdactl cn create.
type CnCreateCmd struct {
	Name string `arg:"" help:"Name of the new controller node."`
	nodeCreateFlags
}

// Run calls CreateCn.
func (n *CnCreateCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.CreateCn(ctx, connect.NewRequest(&vdav1.CreateCnRequest{
		Name:         n.Name,
		AgentAddress: n.AgentAddress,
		Listener:     n.listener(),
		Location:     n.Location,
		Offline:      n.Offline,
		HashCode:     n.HashCode,
		Description:  n.Description,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printNode(c.Stdout, cnView(resp.Msg.GetCn()))
}

// CnDeleteCmd is vdactl cn delete.
type CnDeleteCmd struct {
	Name       string  `arg:"" help:"Name of the controller node."`
	Generation *uint64 `help:"Delete nothing unless the controller node is at this generation." placeholder:"N"`
}

// Run calls DeleteCn.
func (n *CnDeleteCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.DeleteCn(ctx, connect.NewRequest(&vdav1.DeleteCnRequest{
		Name: n.Name, Generation: n.Generation,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	_, err = fmt.Fprintf(c.Stdout, "cn %s deleted\n", n.Name)
	return err
}

// CnModifyCmd is vdactl cn modify.
type CnModifyCmd struct {
	Name string `arg:"" help:"Name of the controller node."`
	nodeModifyFlags
}

// Run calls ModifyCn. A change to part of the listener reads the disk
// node first and, unless --generation is given, sends the generation it
// read, so that a concurrent change is not overwritten.
func (n *CnModifyCmd) Run(ctx context.Context, c *Client) error {
	req := &vdav1.ModifyCnRequest{
		Name:         n.Name,
		Generation:   n.Generation,
		AgentAddress: n.AgentAddress,
		Location:     n.Location,
		Offline:      n.Offline,
		HashCode:     n.HashCode,
		Description:  n.Description,
	}
	if given, all := n.listenerGiven(); given {
		var cur *vdav1.NvmfListener
		if !all {
			got, err := c.Portal.GetCn(ctx, connect.NewRequest(&vdav1.GetCnRequest{Name: n.Name}))
			if err != nil {
				return err
			}
			cur = got.Msg.GetCn().GetListener()
			if req.Generation == nil {
				gen := got.Msg.GetCn().GetGeneration()
				req.Generation = &gen
			}
		}
		req.Listener = n.mergeListener(cur)
	}
	resp, err := c.Portal.ModifyCn(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printNode(c.Stdout, cnView(resp.Msg.GetCn()))
}

// CnListCmd is vdactl cn list.
type CnListCmd struct {
	listFlags
}

// Run calls ListCn, page after page.
func (n *CnListCmd) Run(ctx context.Context, c *Client) error {
	cns, next, err := collect(ctx, c, n.listFlags, func(ctx context.Context, size uint32, token string) ([]*vdav1.Cn, string, error) {
		resp, err := c.Portal.ListCn(ctx, connect.NewRequest(&vdav1.ListCnRequest{PageSize: size, PageToken: token}))
		if err != nil {
			return nil, "", err
		}
		return resp.Msg.GetCns(), resp.Msg.GetNextPageToken(), nil
	})
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, &vdav1.ListCnResponse{Cns: cns, NextPageToken: next})
	}
	views := make([]nodeView, len(cns))
	for i, cn := range cns {
		views[i] = cnView(cn)
	}
	return printNodeList(c.Stdout, views, "CNTLRS")
}

// CnGetCmd is vdactl cn get.
type CnGetCmd struct {
	Name string `arg:"" help:"Name of the controller node."`
}

// Run calls GetCn.
func (n *CnGetCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.GetCn(ctx, connect.NewRequest(&vdav1.GetCnRequest{Name: n.Name}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printNode(c.Stdout, cnView(resp.Msg.GetCn()))
}

// CnEventsCmd is vdactl cn events.
type CnEventsCmd struct {
	Name string `arg:"" help:"Name of the controller node."`
	eventsFlags
}

// Run calls ListCnEvents.
func (e *CnEventsCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.ListCnEvents(ctx, connect.NewRequest(&vdav1.ListNodeEventsRequest{Name: e.Name, Limit: e.Limit}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printNodeEvents(c.Stdout, resp.Msg.GetEvents())
}

// CnSyncupCmd is vdactl cn syncup.
type CnSyncupCmd struct {
	Name string `arg:"" help:"Name of the controller node."`
	syncupFlags
}

// Run calls SyncupCn. A report with errors is printed and makes the exit
// status non-zero.
func (s *CnSyncupCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.SyncupCn(ctx, connect.NewRequest(&vdav1.SyncupCnRequest{Name: s.Name, Force: s.Force}))
	if err != nil {
		return err
	}
	r := resp.Msg.GetReport()
	if c.JSON() {
		err = printJSON(c.Stdout, resp.Msg)
	} else {
		err = printCnReport(c.Stdout, r)
	}
	if err != nil {
		return err
	}
	return syncupErrors("cn", s.Name, r.GetError(), cnReportErrors(r)...)
}
