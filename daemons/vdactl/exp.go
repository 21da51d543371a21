package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// ExpCmd groups the exporter commands; every one names its disk array
// with --da.
type ExpCmd struct {
	Create ExpCreateCmd `cmd:"" help:"Let a host reach a disk array through all its controllers."`
	Delete ExpDeleteCmd `cmd:"" help:"Delete an exporter; the host loses access."`
	Modify ExpModifyCmd `cmd:"" help:"Change an exporter; only the flags given change."`
	List   ExpListCmd   `cmd:"" help:"List the exporters of a disk array."`
	Get    ExpGetCmd    `cmd:"" help:"Show an exporter and how a host connects to it."`
}

// daFlag names the disk array an exp command works in.
type daFlag struct {
	Da string `help:"Name of the disk array." required:"" placeholder:"NAME"`
}

// ExpCreateCmd is vdactl exp create.
type ExpCreateCmd struct {
	daFlag
	Name        string `arg:"" help:"Name of the new exporter, unique within its disk array."`
	HostNqn     string `help:"NQN of the host allowed to connect." required:"" placeholder:"NQN"`
	Description string `help:"Free text."`
}

// Run calls CreateExp.
func (e *ExpCreateCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.CreateExp(ctx, connect.NewRequest(&vdav1.CreateExpRequest{
		DaName: e.Da, Name: e.Name, HostNqn: e.HostNqn, Description: e.Description,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printExp(c.Stdout, resp.Msg.GetExp())
}

// ExpDeleteCmd is vdactl exp delete.
type ExpDeleteCmd struct {
	daFlag
	Name       string  `arg:"" help:"Name of the exporter."`
	Generation *uint64 `help:"Delete nothing unless the exporter is at this generation." placeholder:"N"`
}

// Run calls DeleteExp.
func (e *ExpDeleteCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.DeleteExp(ctx, connect.NewRequest(&vdav1.DeleteExpRequest{
		DaName: e.Da, Name: e.Name, Generation: e.Generation,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	_, err = fmt.Fprintf(c.Stdout, "exp %s deleted from da %s\n", e.Name, e.Da)
	return err
}

// ExpModifyCmd is vdactl exp modify.
type ExpModifyCmd struct {
	daFlag
	Name        string  `arg:"" help:"Name of the exporter."`
	Generation  *uint64 `help:"Change nothing unless the exporter is at this generation." placeholder:"N"`
	Description *string `help:"Free text."`
}

// Run calls ModifyExp.
func (e *ExpModifyCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.ModifyExp(ctx, connect.NewRequest(&vdav1.ModifyExpRequest{
		DaName: e.Da, Name: e.Name, Generation: e.Generation, Description: e.Description,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printExp(c.Stdout, resp.Msg.GetExp())
}

// ExpListCmd is vdactl exp list.
type ExpListCmd struct {
	daFlag
	listFlags
}

// Run calls ListExp, page after page.
func (e *ExpListCmd) Run(ctx context.Context, c *Client) error {
	exps, next, err := collect(ctx, c, e.listFlags, func(ctx context.Context, size uint32, token string) ([]*vdav1.Exp, string, error) {
		resp, err := c.Portal.ListExp(ctx, connect.NewRequest(&vdav1.ListExpRequest{DaName: e.Da, PageSize: size, PageToken: token}))
		if err != nil {
			return nil, "", err
		}
		return resp.Msg.GetExps(), resp.Msg.GetNextPageToken(), nil
	})
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, &vdav1.ListExpResponse{Exps: exps, NextPageToken: next})
	}
	t := newTable("NAME", "HOST_NQN", "GEN", "CREATED")
	for _, exp := range exps {
		t.add(exp.GetName(), exp.GetHostNqn(), fmtUint(exp.GetGeneration()), fmtTime(exp.GetCreatedAtMs()))
	}
	return t.print(c.Stdout)
}

// ExpGetCmd is vdactl exp get.
type ExpGetCmd struct {
	daFlag
	Name string `arg:"" help:"Name of the exporter."`
}

// Run calls GetExp.
func (e *ExpGetCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.GetExp(ctx, connect.NewRequest(&vdav1.GetExpRequest{DaName: e.Da, Name: e.Name}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printExp(c.Stdout, resp.Msg.GetExp())
}

// nvmeConnect is the nvme-cli command with which the host of exp connects
// through path.
func nvmeConnect(exp *vdav1.Exp, path *vdav1.ExpPath) string {
	l := path.GetListener()
	tr := strings.ToLower(l.GetTrtype())
	if tr == "" {
		tr = "tcp"
	}
	return fmt.Sprintf("nvme connect -t %s -a %s -s %s -n %s --hostnqn %s",
		tr, l.GetTraddr(), l.GetTrsvcid(), exp.GetTargetNqn(), exp.GetHostNqn())
}

// printExp prints one exporter as a "key: value" block, its paths, and
// the nvme-cli command that connects each path from the host.
func printExp(w io.Writer, exp *vdav1.Exp) error {
	err := printFields(w, []field{
		{"Name", exp.GetName()},
		{"Disk array", exp.GetDaName()},
		{"ID", exp.GetId()},
		{"Host NQN", exp.GetHostNqn()},
		{"Target NQN", exp.GetTargetNqn()},
		{"Description", exp.GetDescription()},
		{"Generation", fmtUint(exp.GetGeneration())},
		{"Created at", fmtTime(exp.GetCreatedAtMs())},
	})
	if err != nil {
		return err
	}
	paths := newTable("CN", "ROLE", "LISTENER", "HEALTH", "ERROR")
	for _, p := range exp.GetPaths() {
		paths.add(p.GetCnName(), fmtRole(p.GetRole()), fmtListener(p.GetListener()),
			fmtHealth(p.GetStatus().GetHealth()), p.GetStatus().GetError())
	}
	if err := printSection(w, "Paths", paths); err != nil {
		return err
	}
	if len(exp.GetPaths()) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "\nConnect from the host (Linux, nvme-cli), one line per path:\n"); err != nil {
		return err
	}
	for _, p := range exp.GetPaths() {
		if _, err := fmt.Fprintf(w, "  %s\n", nvmeConnect(exp, p)); err != nil {
			return err
		}
	}
	return nil
}
