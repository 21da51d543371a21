package main

import (
	"context"
	"fmt"
	"io"

	"connectrpc.com/connect"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// DaCmd groups the disk array commands.
type DaCmd struct {
	Create DaCreateCmd `cmd:"" help:"Create a disk array; the portal places its vds and controllers."`
	Delete DaDeleteCmd `cmd:"" help:"Delete a disk array; it must have no exporters."`
	Modify DaModifyCmd `cmd:"" help:"Change a disk array or move its primary; only the flags given change."`
	List   DaListCmd   `cmd:"" help:"List disk arrays."`
	Get    DaGetCmd    `cmd:"" help:"Show a disk array with its vds and controllers."`
}

// DaCreateCmd is vdactl da create.
type DaCreateCmd struct {
	Name        string `arg:"" help:"Name of the new disk array."`
	Size        Size   `help:"Size, a multiple of 4 KiB: 10GiB, 512MiB, 1TiB, 10GB or bytes." required:"" placeholder:"SIZE"`
	Raid        string `help:"RAID level: ${enum}." enum:"raid0" default:"raid0"`
	VdCount     uint32 `help:"Number of vds the array stripes over, 1..64." default:"1" placeholder:"N"`
	StripSizeKb uint32 `name:"strip-size-kb" help:"Strip size in KiB, a power of two 4..1024." default:"64" placeholder:"KIB"`
	CntlrCount  uint32 `help:"Number of controllers, 1..8; the first is the primary." default:"1" placeholder:"N"`
	Description string `help:"Free text."`
}

// Run calls CreateDa.
func (d *DaCreateCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
		Name: d.Name,
		Size: uint64(d.Size),
		Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{
			VdCount:     d.VdCount,
			StripSizeKb: d.StripSizeKb,
		}},
		CntlrCount:  d.CntlrCount,
		Description: d.Description,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printDa(c.Stdout, resp.Msg.GetDa())
}

// DaDeleteCmd is vdactl da delete.
type DaDeleteCmd struct {
	Name       string  `arg:"" help:"Name of the disk array."`
	Generation *uint64 `help:"Delete nothing unless the disk array is at this generation." placeholder:"N"`
}

// Run calls DeleteDa.
func (d *DaDeleteCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.DeleteDa(ctx, connect.NewRequest(&vdav1.DeleteDaRequest{
		Name: d.Name, Generation: d.Generation,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	_, err = fmt.Fprintf(c.Stdout, "da %s deleted\n", d.Name)
	return err
}

// DaModifyCmd is vdactl da modify.
type DaModifyCmd struct {
	Name        string  `arg:"" help:"Name of the disk array."`
	Generation  *uint64 `help:"Change nothing unless the disk array is at this generation." placeholder:"N"`
	Description *string `help:"Free text."`
	Primary     *string `help:"Make this controller the primary (its ID, as da get shows it); its cn must be neither offline nor failed." placeholder:"CNTLR-ID"`
}

// Run calls ModifyDa.
func (d *DaModifyCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.ModifyDa(ctx, connect.NewRequest(&vdav1.ModifyDaRequest{
		Name: d.Name, Generation: d.Generation, Description: d.Description, PrimaryCntlrId: d.Primary,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printDa(c.Stdout, resp.Msg.GetDa())
}

// DaListCmd is vdactl da list.
type DaListCmd struct {
	listFlags
}

// Run calls ListDa, page after page.
func (d *DaListCmd) Run(ctx context.Context, c *Client) error {
	das, next, err := collect(ctx, c, d.listFlags, func(ctx context.Context, size uint32, token string) ([]*vdav1.Da, string, error) {
		resp, err := c.Portal.ListDa(ctx, connect.NewRequest(&vdav1.ListDaRequest{PageSize: size, PageToken: token}))
		if err != nil {
			return nil, "", err
		}
		return resp.Msg.GetDas(), resp.Msg.GetNextPageToken(), nil
	})
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, &vdav1.ListDaResponse{Das: das, NextPageToken: next})
	}
	t := newTable("NAME", "SIZE", "RAID", "VDS", "CNTLRS", "GEN", "HEALTH")
	for _, da := range das {
		vds := ""
		if r := da.GetRaid0(); r != nil {
			vds = fmtUint(r.GetVdCount())
		}
		t.add(da.GetName(), FormatSize(da.GetSize()), fmtRaid(da), vds, fmtUint(da.GetCntlrCount()),
			fmtUint(da.GetGeneration()), fmtHealth(da.GetHealth()))
	}
	return t.print(c.Stdout)
}

// DaGetCmd is vdactl da get.
type DaGetCmd struct {
	Name string `arg:"" help:"Name of the disk array."`
}

// Run calls GetDa.
func (d *DaGetCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: d.Name}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printDa(c.Stdout, resp.Msg.GetDa())
}

// fmtRaid spells a da's RAID level.
func fmtRaid(da *vdav1.Da) string {
	if da.GetRaid0() != nil {
		return "raid0"
	}
	return ""
}

// printDa prints one da as a "key: value" block followed by its vds and
// controllers.
func printDa(w io.Writer, da *vdav1.Da) error {
	fields := []field{
		{"Name", da.GetName()},
		{"ID", da.GetId()},
		{"Size", fmt.Sprintf("%s (%d bytes)", FormatSize(da.GetSize()), da.GetSize())},
		{"RAID", fmtRaid(da)},
	}
	if r := da.GetRaid0(); r != nil {
		fields = append(fields,
			field{"VD count", fmtUint(r.GetVdCount())},
			field{"Strip size", fmtUint(r.GetStripSizeKb()) + " KiB"},
		)
	}
	fields = append(fields,
		field{"Controller count", fmtUint(da.GetCntlrCount())},
		field{"NQN", da.GetNqn()},
		field{"Description", da.GetDescription()},
		field{"Generation", fmtUint(da.GetGeneration())},
		field{"Health", fmtHealth(da.GetHealth())},
		field{"Created at", fmtTime(da.GetCreatedAtMs())},
	)
	if err := printFields(w, fields); err != nil {
		return err
	}

	vds := newTable("INDEX", "DN", "PD", "SIZE", "HEALTH", "ERROR")
	for _, vd := range da.GetVds() {
		vds.add(fmtUint(vd.GetIndex()), vd.GetDnName(), vd.GetPdName(), FormatSize(vd.GetSize()),
			fmtHealth(vd.GetStatus().GetHealth()), vd.GetStatus().GetError())
	}
	if err := printSection(w, "VDs", vds); err != nil {
		return err
	}
	// The id is what da modify --primary takes.
	cntlrs := newTable("INDEX", "ID", "CN", "ROLE", "LISTENER", "HEALTH", "ERROR")
	for _, cn := range da.GetCntlrs() {
		cntlrs.add(fmtUint(cn.GetIndex()), cn.GetId(), cn.GetCnName(), fmtRole(cn.GetRole()), fmtListener(cn.GetListener()),
			fmtHealth(cn.GetStatus().GetHealth()), cn.GetStatus().GetError())
	}
	return printSection(w, "CNTLRS", cntlrs)
}
