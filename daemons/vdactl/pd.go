package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"connectrpc.com/connect"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// PdCmd groups the physical disk commands; every one names its disk node
// with --dn.
type PdCmd struct {
	Create PdCreateCmd `cmd:"" help:"Create a physical disk on a disk node."`
	Delete PdDeleteCmd `cmd:"" help:"Delete a physical disk; it must hold no vds."`
	Modify PdModifyCmd `cmd:"" help:"Change a physical disk; only the flags given change."`
	List   PdListCmd   `cmd:"" help:"List the physical disks of a disk node."`
	Get    PdGetCmd    `cmd:"" help:"Show a physical disk."`
}

// dnFlag names the disk node a pd command works in.
type dnFlag struct {
	Dn string `help:"Name of the disk node." required:"" placeholder:"NAME"`
}

// PdCreateCmd is vdactl pd create.
type PdCreateCmd struct {
	dnFlag
	Name        string `arg:"" help:"Name of the new physical disk, unique within its disk node."`
	MallocSize  *Size  `help:"Back the pd by a RAM disk of this size, a multiple of 1 MiB (tests, demos)." placeholder:"SIZE"`
	AioPath     string `help:"Back the pd by a file or block device on the disk node, through Linux AIO (an absolute path)." placeholder:"PATH"`
	NvmePcie    string `help:"Back the pd by a local NVMe SSD at this PCIe address, e.g. 0000:3b:00.0." placeholder:"ADDR"`
	Offline     bool   `help:"Place nothing new on the pd."`
	Description string `help:"Free text."`
}

// Validate checks that exactly one backend was given.
func (p *PdCreateCmd) Validate() error {
	n := 0
	if p.MallocSize != nil {
		n++
	}
	if p.AioPath != "" {
		n++
	}
	if p.NvmePcie != "" {
		n++
	}
	if n != 1 {
		return errors.New("give exactly one backend: --malloc-size, --aio-path or --nvme-pcie")
	}
	return nil
}

// Run calls CreatePd.
func (p *PdCreateCmd) Run(ctx context.Context, c *Client) error {
	req := &vdav1.CreatePdRequest{
		DnName:      p.Dn,
		Name:        p.Name,
		Offline:     p.Offline,
		Description: p.Description,
	}
	switch {
	case p.MallocSize != nil:
		req.Backend = &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: uint64(*p.MallocSize)}}
	case p.AioPath != "":
		req.Backend = &vdav1.CreatePdRequest_Aio{Aio: &vdav1.PdAio{Path: p.AioPath}}
	default:
		req.Backend = &vdav1.CreatePdRequest_Nvme{Nvme: &vdav1.PdNvme{PcieAddr: p.NvmePcie}}
	}
	resp, err := c.Portal.CreatePd(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printPd(c.Stdout, resp.Msg.GetPd())
}

// PdDeleteCmd is vdactl pd delete.
type PdDeleteCmd struct {
	dnFlag
	Name       string  `arg:"" help:"Name of the physical disk."`
	Generation *uint64 `help:"Delete nothing unless the physical disk is at this generation." placeholder:"N"`
}

// Run calls DeletePd.
func (p *PdDeleteCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.DeletePd(ctx, connect.NewRequest(&vdav1.DeletePdRequest{
		DnName: p.Dn, Name: p.Name, Generation: p.Generation,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	_, err = fmt.Fprintf(c.Stdout, "pd %s deleted from dn %s\n", p.Name, p.Dn)
	return err
}

// PdModifyCmd is vdactl pd modify.
type PdModifyCmd struct {
	dnFlag
	Name        string  `arg:"" help:"Name of the physical disk."`
	Generation  *uint64 `help:"Change nothing unless the physical disk is at this generation." placeholder:"N"`
	Offline     *bool   `help:"Place nothing new on the pd (--no-offline to undo)." negatable:""`
	Description *string `help:"Free text."`
}

// Run calls ModifyPd.
func (p *PdModifyCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.ModifyPd(ctx, connect.NewRequest(&vdav1.ModifyPdRequest{
		DnName:      p.Dn,
		Name:        p.Name,
		Generation:  p.Generation,
		Offline:     p.Offline,
		Description: p.Description,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printPd(c.Stdout, resp.Msg.GetPd())
}

// PdListCmd is vdactl pd list.
type PdListCmd struct {
	dnFlag
	listFlags
}

// Run calls ListPd, page after page.
func (p *PdListCmd) Run(ctx context.Context, c *Client) error {
	pds, next, err := collect(ctx, c, p.listFlags, func(ctx context.Context, size uint32, token string) ([]*vdav1.Pd, string, error) {
		resp, err := c.Portal.ListPd(ctx, connect.NewRequest(&vdav1.ListPdRequest{DnName: p.Dn, PageSize: size, PageToken: token}))
		if err != nil {
			return nil, "", err
		}
		return resp.Msg.GetPds(), resp.Msg.GetNextPageToken(), nil
	})
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, &vdav1.ListPdResponse{Pds: pds, NextPageToken: next})
	}
	t := newTable("NAME", "BACKEND", "CAPACITY", "ALLOCATED", "OFFLINE", "GEN", "HEALTH", "VDS")
	for _, pd := range pds {
		t.add(pd.GetName(), fmtBackend(pd), FormatSize(pd.GetCapacity()), FormatSize(pd.GetAllocated()),
			fmtBool(pd.GetOffline()), fmtUint(pd.GetGeneration()), fmtHealth(pd.GetStatus().GetHealth()),
			fmtUint(pd.GetVdCount()))
	}
	return t.print(c.Stdout)
}

// PdGetCmd is vdactl pd get.
type PdGetCmd struct {
	dnFlag
	Name string `arg:"" help:"Name of the physical disk."`
}

// Run calls GetPd.
func (p *PdGetCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.GetPd(ctx, connect.NewRequest(&vdav1.GetPdRequest{DnName: p.Dn, Name: p.Name}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printPd(c.Stdout, resp.Msg.GetPd())
}

// fmtBackend spells a pd's backend: "malloc 1.0 GiB", "aio /dev/sdb" or
// "nvme 0000:3b:00.0".
func fmtBackend(pd *vdav1.Pd) string {
	switch b := pd.GetBackend().(type) {
	case *vdav1.Pd_Malloc:
		return "malloc " + FormatSize(b.Malloc.GetSize())
	case *vdav1.Pd_Aio:
		return "aio " + b.Aio.GetPath()
	case *vdav1.Pd_Nvme:
		return "nvme " + b.Nvme.GetPcieAddr()
	}
	return ""
}

// printPd prints one pd as a "key: value" block.
func printPd(w io.Writer, pd *vdav1.Pd) error {
	st := pd.GetStatus()
	var free uint64
	if pd.GetCapacity() > pd.GetAllocated() {
		free = pd.GetCapacity() - pd.GetAllocated()
	}
	fields := []field{
		{"Name", pd.GetName()},
		{"Disk node", pd.GetDnName()},
		{"ID", pd.GetId()},
		{"Backend", fmtBackend(pd)},
		{"Offline", fmtBool(pd.GetOffline())},
		{"Description", pd.GetDescription()},
		{"Generation", fmtUint(pd.GetGeneration())},
		{"Capacity", FormatSize(pd.GetCapacity())},
		{"Allocated", FormatSize(pd.GetAllocated())},
		{"Free", FormatSize(free)},
		{"Health", fmtHealth(st.GetHealth())},
	}
	if e := st.GetError(); e != "" {
		fields = append(fields, field{"Error", e})
	}
	if st.GetReportedAtMs() != 0 {
		fields = append(fields,
			field{"Reported capacity", FormatSize(st.GetCapacity())},
			field{"Reported free", FormatSize(st.GetFree())},
		)
	}
	fields = append(fields,
		field{"Reported at", fmtTime(st.GetReportedAtMs())},
		field{"Created at", fmtTime(pd.GetCreatedAtMs())},
		field{"VDs", fmtUint(pd.GetVdCount())},
	)
	return printFields(w, fields)
}
