// Command vdactl is the command-line client of the VDA portal: one
// subcommand per PortalService call, `vdactl <resource> <verb>`.
//
// Resources are dn (disk nodes), pd (physical disks, within a dn), cn
// (controller nodes), da (disk arrays), exp (exporters, within a da),
// token (API tokens) and cluster. Output is a human table by default and
// the response message as JSON with -o json. Errors go to stderr as
// "vdactl: <code>: <message>", with a "hint:" line when there is a likely
// fix, and make the exit status non-zero.
//
// Every call carries the API token from --token or --token-file, VDA_TOKEN
// or VDA_TOKEN_FILE, or the config file (docs/vdactl.md); the token is
// never printed.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// CLI is the kong grammar of vdactl: the global flags and one command per
// resource.
type CLI struct {
	Globals

	Dn         DnCmd         `cmd:"" help:"Manage disk nodes (dns): servers that give physical disks to arrays."`
	Pd         PdCmd         `cmd:"" help:"Manage physical disks (pds) of a disk node."`
	Cn         CnCmd         `cmd:"" help:"Manage controller nodes (cns): servers that run array controllers."`
	Da         DaCmd         `cmd:"" help:"Manage disk arrays (das)."`
	Exp        ExpCmd        `cmd:"" help:"Manage exporters (exps): a host's permission to reach an array."`
	Cluster    ClusterCmd    `cmd:"" help:"Show the cluster as a whole."`
	Token      TokenCmd      `cmd:"" help:"Manage API tokens (admin)."`
	Whoami     WhoamiCmd     `cmd:"" help:"Show the name and role of the token in use."`
	Completion CompletionCmd `cmd:"" help:"Print a shell completion script."`
	Version    VersionCmd    `cmd:"" help:"Print the version of vdactl."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

func (*VersionCmd) offline() {}

// Run prints the version.
func (v *VersionCmd) Run(ctx context.Context, c *Client) error {
	_, err := fmt.Fprintf(c.Stdout, "vdactl %s\n", version)
	return err
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

// exitRequest is what kong's Exit hook panics with, so that kong never
// ends the process from inside run (help, for one, asks to exit 0).
type exitRequest int

// newParser builds the kong parser over cli. Help goes to stdout, kong's
// own messages to stderr, and a request to exit panics with exitRequest.
func newParser(cli *CLI, stdout, stderr io.Writer, binds ...any) (*kong.Kong, error) {
	return kong.New(cli,
		kong.Name("vdactl"),
		kong.Description("vdactl manages a VDA cluster through its portal."),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, Summary: true}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitRequest(code)) }),
		kong.Bind(binds...),
	)
}

// run parses args, calls the selected command and reports an error on
// stderr. It returns the error, or nil on success (help included).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cli CLI
	client := &Client{Stdout: stdout, Stderr: stderr}
	parser, err := newParser(&cli, stdout, stderr, client)
	if err != nil {
		fmt.Fprintf(stderr, "vdactl: %v\n", err)
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			err = nil
			if code != 0 {
				err = fmt.Errorf("exit status %d", code)
			}
		}
	}()
	if len(args) == 0 {
		args = []string{"--help"}
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		var cerr *configError
		if errors.As(err, &cerr) {
			fmt.Fprintf(stderr, "vdactl: error: %v\n", cerr)
		} else {
			reportParseError(stderr, err)
		}
		return err
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(); err != nil {
		reportError(stderr, err, client.conn)
		return err
	}
	return nil
}

// reportParseError prints a command-line error and where to find usage.
func reportParseError(w io.Writer, err error) {
	fmt.Fprintf(w, "vdactl: error: %v\n", err)
	usage := "vdactl --help"
	var perr *kong.ParseError
	if errors.As(err, &perr) && perr.Context != nil {
		if sel := perr.Context.Selected(); sel != nil {
			usage = "vdactl " + sel.Path() + " --help"
		}
	}
	fmt.Fprintf(w, "Run '%s' for usage.\n", usage)
}
