package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// Main is the whole of a daemon's main: it runs run with the command line's
// arguments and the process's stdout and stderr, and exits 1 with
// "<name>: <error>" on stderr if run fails.
//
// run's context ends at SIGINT or SIGTERM, so that a service manager's stop
// (or ^C) is a clean shutdown, which exits 0, and not a kill. run gets its
// arguments and writers rather than reading os's, so that tests call it
// in-process.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Parse parses args into cli, a daemon's kong CLI struct, under the
// daemon's name and description; version is what a kong.VersionFlag in cli
// prints. Help and usage errors go to stdout and stderr.
//
// kong exits the process after --help and --version; here they print and
// Parse returns done instead, so that the daemon returns nil from its run
// (a test calls run in-process, and no deferred cleanup is skipped). The
// caller returns err if done or err is set:
//
//	if done, err := daemon.Parse(&c, ...); done || err != nil {
//		return err
//	}
func Parse(cli any, name, description, version string, args []string, stdout, stderr io.Writer) (done bool, err error) {
	exited := false
	parser, err := kong.New(cli, kong.Name(name), kong.Description(description),
		kong.Vars{"version": version}, kong.Writers(stdout, stderr), kong.Exit(func(int) { exited = true }))
	if err != nil {
		return false, err
	}
	_, err = parser.Parse(args)
	return exited, err
}
