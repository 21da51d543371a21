package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/nvmetcp/host"
	"github.com/virtual-disk-array/vda/pki"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// clusterCmd is `vdabench cluster`: against a running cluster (vda-cluster
// in another terminal), the time from CreateDa to the array being
// connectable, array after array. Connectable means that VDA's Go
// initiator, as the exporter's host, connects through every controller of
// the array and reads block 0 through each.
type clusterCmd struct {
	Portal  string        `help:"The cluster's portal: host:port or an http(s) URL." default:"http://127.0.0.1:9520" env:"VDA_PORTAL"`
	Token   string        `help:"API token (operator or admin) for the portal." env:"VDA_TOKEN"`
	CAFile  string        `name:"ca-file" help:"CA bundle to verify an https portal with (vda-cluster's is <state-dir>/pki/ca.crt)." env:"VDA_CA_FILE" type:"path"`
	Count   int           `help:"Arrays created, one after the other." default:"20"`
	Size    string        `help:"Size of each array." default:"64MiB"`
	VDs     uint32        `name:"vds" help:"Vds of each array (raid0)." default:"2"`
	Cntlrs  uint32        `name:"cntlrs" help:"Controllers of each array." default:"2"`
	Prefix  string        `help:"Arrays are named <prefix><i>; ones left by an interrupted run are deleted first." default:"da-bench-"`
	HostNQN string        `name:"hostnqn" help:"Host NQN of each array's exporter, the one the initiator presents." default:"nqn.2016-06.io.vda:vdabench"`
	Poll    time.Duration `help:"Interval between connectability checks." default:"20ms"`
	Timeout time.Duration `help:"How long an array may take to become connectable." default:"60s"`
	Keep    bool          `help:"Leave the arrays in the cluster at the end."`
	JSON    bool          `name:"json" help:"Print the results as JSON instead of a table."`
}

// clusterRow is one array's figures.
type clusterRow struct {
	Name string `json:"name"`
	// CreateMs is the CreateDa call alone, ExpMs the CreateExp call after it.
	CreateMs float64 `json:"create_da_ms"`
	ExpMs    float64 `json:"create_exp_ms"`
	// ConnectableMs is from the start of CreateDa to the moment the last
	// of the array's controllers served block 0 to the exporter's host.
	ConnectableMs float64 `json:"connectable_ms"`
	// Checks is how many polls that took.
	Checks int `json:"checks"`
}

type clusterResult struct {
	Rows        []clusterRow `json:"arrays"`
	P50Ms       float64      `json:"connectable_p50_ms"`
	P90Ms       float64      `json:"connectable_p90_ms"`
	MaxMs       float64      `json:"connectable_max_ms"`
	MinMs       float64      `json:"connectable_min_ms"`
	CreateP50Ms float64      `json:"create_da_p50_ms"`
}

func portalURL(s string) string {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return strings.TrimRight(s, "/")
	}
	return "http://" + s
}

func runCluster(ctx context.Context, c clusterCmd, out io.Writer) error {
	size, err := parseSize(c.Size)
	if err != nil || size <= 0 {
		return fmt.Errorf("--size %q: not a size", c.Size)
	}
	if c.Count <= 0 {
		return errors.New("--count must be positive")
	}
	if c.Poll <= 0 {
		c.Poll = 20 * time.Millisecond
	}
	tlsCfg, err := pki.ClientOnly(c.CAFile)
	if err != nil {
		return fmt.Errorf("--ca-file: %w", err)
	}
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}}
	api := vdav1connect.NewPortalServiceClient(httpc, portalURL(c.Portal), auth.WithBearer(c.Token))
	name := func(i int) string { return fmt.Sprintf("%s%d", c.Prefix, i) }

	// The arrays go at the end, and at Ctrl-C (ctx canceled): cleanup runs
	// on a context of its own.
	var made []string
	cleanup := func() error {
		if c.Keep {
			return nil
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var errs []error
		for _, n := range made {
			if err := deleteArray(cctx, api, n); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	// Leftovers of an interrupted run.
	for i := range c.Count {
		if _, err := api.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: name(i)})); err == nil {
			fmt.Fprintf(os.Stderr, "vdabench: deleting %s, left by an earlier run\n", name(i))
			if err := deleteArray(ctx, api, name(i)); err != nil {
				return err
			}
		} else if connect.CodeOf(err) != connect.CodeNotFound {
			return fmt.Errorf("portal %s: %w", c.Portal, err)
		}
	}

	var res clusterResult
	runErr := func() error {
		for i := range c.Count {
			n := name(i)
			row, err := createAndConnect(ctx, api, c, n, uint64(size), func() { made = append(made, n) })
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			fmt.Fprintf(os.Stderr, "vdabench: %s connectable through %d controllers %.1f ms after CreateDa (%d checks)\n", n, c.Cntlrs, row.ConnectableMs, row.Checks)
			res.Rows = append(res.Rows, row)
		}
		return nil
	}()
	if err := cleanup(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("delete the arrays: %w", err))
	}
	if len(res.Rows) > 0 {
		var conn, create []float64
		for _, r := range res.Rows {
			conn = append(conn, r.ConnectableMs)
			create = append(create, r.CreateMs)
		}
		slices.Sort(conn)
		slices.Sort(create)
		res.P50Ms, res.P90Ms, res.MinMs, res.MaxMs = pctMs(conn, 0.5), pctMs(conn, 0.9), conn[0], conn[len(conn)-1]
		res.CreateP50Ms = pctMs(create, 0.5)
		if err := clusterReport(out, c, res); err != nil {
			return errors.Join(runErr, err)
		}
	}
	return runErr
}

// pctMs is the nearest-rank percentile of sorted values.
func pctMs(sorted []float64, p float64) float64 {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}

func clusterReport(out io.Writer, c clusterCmd, res clusterResult) error {
	if c.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "array\tCreateDa ms\tCreateExp ms\tconnectable ms\tchecks\t")
	for _, r := range res.Rows {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%d\t\n", r.Name, r.CreateMs, r.ExpMs, r.ConnectableMs, r.Checks)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "%d arrays of %s (%d vds, %d controllers): CreateDa -> connectable through every controller p50 %.0f ms, p90 %.0f ms, min %.0f ms, max %.0f ms (CreateDa call p50 %.1f ms; polled every %v)\n",
		len(res.Rows), c.Size, c.VDs, c.Cntlrs, res.P50Ms, res.P90Ms, res.MinMs, res.MaxMs, res.CreateP50Ms, c.Poll)
	return err
}

// createAndConnect creates the array and its exporter, then polls until
// every controller serves block 0 to the exporter's host.
func createAndConnect(ctx context.Context, api vdav1connect.PortalServiceClient, c clusterCmd, name string, size uint64, created func()) (clusterRow, error) {
	row := clusterRow{Name: name}
	t0 := time.Now()
	if _, err := api.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
		Name: name, Size: size, CntlrCount: c.Cntlrs,
		Raid:        &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: c.VDs}},
		Description: "vdabench cluster",
	})); err != nil {
		return row, fmt.Errorf("create da: %w", err)
	}
	created()
	t1 := time.Now()
	resp, err := api.CreateExp(ctx, connect.NewRequest(&vdav1.CreateExpRequest{DaName: name, Name: "bench", HostNqn: c.HostNQN}))
	if err != nil {
		return row, fmt.Errorf("create exp: %w", err)
	}
	t2 := time.Now()
	row.CreateMs, row.ExpMs = ms(t1.Sub(t0)), ms(t2.Sub(t1))
	nqn := resp.Msg.GetExp().GetTargetNqn()
	// The paths are fixed once the array exists (one per controller); the
	// ones that already served block 0 are not tried again.
	done := map[string]bool{}
	deadline := t0.Add(c.Timeout)
	var last error
	for {
		row.Checks++
		pr, err := api.GetExp(ctx, connect.NewRequest(&vdav1.GetExpRequest{DaName: name, Name: "bench"}))
		if err != nil {
			return row, fmt.Errorf("get exp: %w", err)
		}
		paths := pr.Msg.GetExp().GetPaths()
		all := len(paths) == int(c.Cntlrs)
		for _, p := range paths {
			l := p.GetListener()
			addr := net.JoinHostPort(l.GetTraddr(), l.GetTrsvcid())
			if done[addr] {
				continue
			}
			if err := readBlock0(ctx, addr, nqn, c.HostNQN); err != nil {
				all, last = false, fmt.Errorf("%s on %s: %w", p.GetCnName(), addr, err)
				continue
			}
			done[addr] = true
		}
		if all && len(done) == int(c.Cntlrs) {
			row.ConnectableMs = ms(time.Since(t0))
			return row, nil
		}
		if time.Now().After(deadline) {
			return row, fmt.Errorf("not connectable through every controller within %v: %v", c.Timeout, last)
		}
		select {
		case <-ctx.Done():
			return row, ctx.Err()
		case <-time.After(c.Poll):
		}
	}
}

// readBlock0 connects to nqn at addr as hostNQN and reads the first block.
func readBlock0(ctx context.Context, addr, nqn, hostNQN string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h, err := host.Dial(ctx, addr, host.Config{SubNQN: nqn, HostNQN: hostNQN, QueueDepth: 2})
	if err != nil {
		return err
	}
	defer h.Close()
	buf := make([]byte, h.BlockSize())
	return h.ReadAt(ctx, buf, 0)
}

// deleteArray deletes the array's exporters, then the array.
func deleteArray(ctx context.Context, api vdav1connect.PortalServiceClient, name string) error {
	exps, err := api.ListExp(ctx, connect.NewRequest(&vdav1.ListExpRequest{DaName: name}))
	if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
		return fmt.Errorf("list exp of %s: %w", name, err)
	}
	if err == nil {
		for _, e := range exps.Msg.GetExps() {
			if _, err := api.DeleteExp(ctx, connect.NewRequest(&vdav1.DeleteExpRequest{DaName: name, Name: e.GetName()})); err != nil && connect.CodeOf(err) != connect.CodeNotFound {
				return fmt.Errorf("delete exp %s of %s: %w", e.GetName(), name, err)
			}
		}
	}
	if _, err := api.DeleteDa(ctx, connect.NewRequest(&vdav1.DeleteDaRequest{Name: name})); err != nil && connect.CodeOf(err) != connect.CodeNotFound {
		return fmt.Errorf("delete da %s: %w", name, err)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
