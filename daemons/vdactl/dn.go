package main

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// DnCmd groups the disk node commands.
type DnCmd struct {
	Create DnCreateCmd `cmd:"" help:"Create a disk node."`
	Delete DnDeleteCmd `cmd:"" help:"Delete a disk node; it must hold no pds."`
	Modify DnModifyCmd `cmd:"" help:"Change a disk node; only the flags given change."`
	List   DnListCmd   `cmd:"" help:"List disk nodes."`
	Get    DnGetCmd    `cmd:"" help:"Show a disk node."`
	Events DnEventsCmd `cmd:"" help:"Show the monitors' log of a disk node's state changes, newest first."`
	Syncup DnSyncupCmd `cmd:"" help:"Push a disk node's desired state to its agent now and show its report (admin)."`
}

// DnCreateCmd is vdactl dn create.
type DnCreateCmd struct {
	Name string `arg:"" help:"Name of the new disk node."`
	nodeCreateFlags
}

// Run calls CreateDn.
func (d *DnCreateCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.CreateDn(ctx, connect.NewRequest(&vdav1.CreateDnRequest{
		Name:         d.Name,
		AgentAddress: d.AgentAddress,
		Listener:     d.listener(),
		Location:     d.Location,
		Offline:      d.Offline,
		HashCode:     d.HashCode,
		Description:  d.Description,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printNode(c.Stdout, dnView(resp.Msg.GetDn()))
}

// DnDeleteCmd is vdactl dn delete.
type DnDeleteCmd struct {
	Name       string  `arg:"" help:"Name of the disk node."`
	Generation *uint64 `help:"Delete nothing unless the disk node is at this generation." placeholder:"N"`
}

// Run calls DeleteDn.
func (d *DnDeleteCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.DeleteDn(ctx, connect.NewRequest(&vdav1.DeleteDnRequest{
		Name: d.Name, Generation: d.Generation,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	_, err = fmt.Fprintf(c.Stdout, "dn %s deleted\n", d.Name)
	return err
}

// DnModifyCmd is vdactl dn modify.
type DnModifyCmd struct {
	Name string `arg:"" help:"Name of the disk node."`
	nodeModifyFlags
}

// Run calls ModifyDn. A change to part of the listener reads the disk
// node first and, unless --generation is given, sends the generation it
// read, so that a concurrent change is not overwritten.
func (d *DnModifyCmd) Run(ctx context.Context, c *Client) error {
	req := &vdav1.ModifyDnRequest{
		Name:         d.Name,
		Generation:   d.Generation,
		AgentAddress: d.AgentAddress,
		Location:     d.Location,
		Offline:      d.Offline,
		HashCode:     d.HashCode,
		Description:  d.Description,
	}
	if given, all := d.listenerGiven(); given {
		var cur *vdav1.NvmfListener
		if !all {
			got, err := c.Portal.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: d.Name}))
			if err != nil {
				return err
			}
			cur = got.Msg.GetDn().GetListener()
			if req.Generation == nil {
				gen := got.Msg.GetDn().GetGeneration()
				req.Generation = &gen
			}
		}
		req.Listener = d.mergeListener(cur)
	}
	resp, err := c.Portal.ModifyDn(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printNode(c.Stdout, dnView(resp.Msg.GetDn()))
}

// DnListCmd is vdactl dn list.
type DnListCmd struct {
	listFlags
}

// Run calls ListDn, page after page.
func (d *DnListCmd) Run(ctx context.Context, c *Client) error {
	dns, next, err := collect(ctx, c, d.listFlags, func(ctx context.Context, size uint32, token string) ([]*vdav1.Dn, string, error) {
		resp, err := c.Portal.ListDn(ctx, connect.NewRequest(&vdav1.ListDnRequest{PageSize: size, PageToken: token}))
		if err != nil {
			return nil, "", err
		}
		return resp.Msg.GetDns(), resp.Msg.GetNextPageToken(), nil
	})
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, &vdav1.ListDnResponse{Dns: dns, NextPageToken: next})
	}
	views := make([]nodeView, len(dns))
	for i, dn := range dns {
		views[i] = dnView(dn)
	}
	return printNodeList(c.Stdout, views, "PDS")
}

// DnGetCmd is vdactl dn get.
type DnGetCmd struct {
	Name string `arg:"" help:"Name of the disk node."`
}

// Run calls GetDn.
func (d *DnGetCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: d.Name}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printNode(c.Stdout, dnView(resp.Msg.GetDn()))
}

// DnEventsCmd is vdactl dn events.
type DnEventsCmd struct {
	Name string `arg:"" help:"Name of the disk node."`
	eventsFlags
}

// Run calls ListDnEvents.
func (e *DnEventsCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.ListDnEvents(ctx, connect.NewRequest(&vdav1.ListNodeEventsRequest{Name: e.Name, Limit: e.Limit}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printNodeEvents(c.Stdout, resp.Msg.GetEvents())
}

// DnSyncupCmd is vdactl dn syncup.
type DnSyncupCmd struct {
	Name string `arg:"" help:"Name of the disk node."`
	syncupFlags
}

// Run calls SyncupDn. A report with errors is printed and makes the exit
// status non-zero.
func (s *DnSyncupCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.SyncupDn(ctx, connect.NewRequest(&vdav1.SyncupDnRequest{Name: s.Name, Force: s.Force}))
	if err != nil {
		return err
	}
	r := resp.Msg.GetReport()
	if c.JSON() {
		err = printJSON(c.Stdout, resp.Msg)
	} else {
		err = printDnReport(c.Stdout, r)
	}
	if err != nil {
		return err
	}
	return syncupErrors("dn", s.Name, r.GetError(), dnReportErrors(r)...)
}
