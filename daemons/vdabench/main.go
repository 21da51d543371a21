// Command vdabench is VDA's benchmark tool. See docs/benchmarks.md.
//
// vdabench portal (the default command) measures the portal through its
// real API: it serves a portal in-process over h2c on loopback, fills the
// store with an inventory (dns, pds, cns) and arrays, and reports CreateDa,
// GetDa and ListDa throughput and latency percentiles.
//
// vdabench nvme drives an NVMe/TCP target with VDA's Go initiator
// (nvmetcp/host) and reports IOPS, bandwidth, latency percentiles and CPU
// per I/O; with --spawn it starts and configures vda-dataplane targets
// itself (see nvme.go).
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/alecthomas/kong"
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/portal"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/serve"
	"github.com/virtual-disk-array/vda/store"
)

type cli struct {
	Portal  portalCmd  `cmd:"" default:"withargs" help:"Benchmark the portal's API (the default command)."`
	NVMe    nvmeCmd    `cmd:"" name:"nvme" help:"Benchmark an NVMe/TCP target with VDA's Go initiator."`
	Cluster clusterCmd `cmd:"" name:"cluster" help:"Against a running cluster: time from CreateDa to the array being connectable through every controller."`
}

type portalCmd struct {
	DSN        string `help:"Store to benchmark; empty means a fresh SQLite file in a temp dir." env:"VDA_BENCH_DSN"`
	DNs        int    `name:"dns" help:"Disk nodes." default:"1000"`
	PDsPerDN   int    `name:"pds-per-dn" help:"Malloc pds per dn." default:"10"`
	CNs        int    `name:"cns" help:"Controller nodes." default:"100"`
	DAs        int    `name:"das" help:"Arrays created before the measured calls." default:"10000"`
	Creates    int    `help:"CreateDa calls measured once the arrays exist." default:"1000"`
	Gets       int    `help:"GetDa calls measured." default:"5000"`
	Clients    int    `help:"Concurrent clients." default:"8"`
	PageSize   uint32 `help:"ListDa page size." default:"100"`
	CPUProfile string `help:"Write a CPU profile of the whole run to this file."`
	Auth       bool   `help:"Check an API token on every call, as vda-portal does (one read of the token by primary key, a SHA-256 and a compare); without it the figures leave that out."`
	TLS        bool   `name:"tls" help:"Serve over TLS (HTTP/2, a throwaway CA) instead of h2c."`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vdabench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var c cli
	exited := false
	parser, err := kong.New(&c, kong.Name("vdabench"), kong.Description("VDA's benchmarks: the portal's API, or an NVMe/TCP target."),
		kong.Writers(out, os.Stderr), kong.Exit(func(int) { exited = true }))
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if exited {
		return nil // --help
	}
	if err != nil {
		return err
	}
	switch kctx.Command() {
	case "nvme":
		return runNVMe(ctx, c.NVMe, out)
	case "cluster":
		return runCluster(ctx, c.Cluster, out)
	default:
		return runPortal(ctx, c.Portal, out)
	}
}

func runPortal(ctx context.Context, c portalCmd, out io.Writer) error {
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if c.DSN == "" {
		dir, err := os.MkdirTemp("", "vdabench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.DSN = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(ctx, store.Config{DSN: c.DSN, Logger: quiet, MaxAttempts: 200})
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := portal.New(portal.Config{DB: db, Logger: quiet})
	if err != nil {
		return err
	}
	// Without --auth the numbers leave out the token check.
	h, err := portal.NewHandler(svc, portal.HandlerConfig{Insecure: !c.Auth})
	if err != nil {
		return err
	}
	opts := []connect.ClientOption{connect.WithGRPC()}
	if c.Auth {
		bearer, id, hash := auth.NewToken()
		if err := db.Update(ctx, func(ctx context.Context, tx *store.Tx) error {
			return tx.CreateToken(ctx, &store.Token{ID: id, Name: "vdabench", Role: auth.Admin.String(), Hash: hash})
		}); err != nil {
			return err
		}
		opts = append(opts, auth.WithBearer(bearer))
	}
	tlsDir, err := os.MkdirTemp("", "vdabench-tls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tlsDir)
	serverTLS, httpc, scheme, err := benchTLS(c.TLS, tlsDir)
	if err != nil {
		return err
	}
	ln, err := serve.Listen("127.0.0.1:0", serverTLS)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = portal.Serve(sctx, ln, h, time.Second) }()
	client := vdav1connect.NewPortalServiceClient(httpc, scheme+ln.Addr().String(), opts...)

	fmt.Fprintf(out, "store %s; %d dns x %d pds, %d cns, %d das, %d clients; tokens %v, tls %v\n", db.Dialect(), c.DNs, c.PDsPerDN, c.CNs, c.DAs, c.Clients, c.Auth, c.TLS)
	start := time.Now()
	if err := fill(ctx, client, c); err != nil {
		return err
	}
	fmt.Fprintf(out, "inventory created in %v\n", time.Since(start).Round(time.Millisecond))

	createDa := func(ctx context.Context, i int) error {
		_, err := client.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
			Name: fmt.Sprintf("da%06d", i), Size: 1 << 30,
			Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: 2}}, CntlrCount: 2,
		}))
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "call\tcalls\tops/s\tp50 ms\tp99 ms\tmax ms\t")
	fillDas := measure(ctx, c.DAs, c.Clients, createDa)
	fillDas.row(tw, fmt.Sprintf("CreateDa 0->%d", c.DAs))
	if fillDas.errs > 0 {
		return fmt.Errorf("create arrays: %w", fillDas.first)
	}
	create := measure(ctx, c.Creates, c.Clients, func(ctx context.Context, i int) error { return createDa(ctx, c.DAs+i) })
	create.row(tw, fmt.Sprintf("CreateDa @%d", c.DAs))
	get := measure(ctx, c.Gets, c.Clients, func(ctx context.Context, i int) error {
		_, err := client.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: fmt.Sprintf("da%06d", rand.N(c.DAs+c.Creates))}))
		return err
	})
	get.row(tw, fmt.Sprintf("GetDa @%d", c.DAs+c.Creates))
	// ListDa: walk every page, one client, timing each page.
	var pages []time.Duration
	token, listed, lstart := "", 0, time.Now()
	for {
		t0 := time.Now()
		resp, err := client.ListDa(ctx, connect.NewRequest(&vdav1.ListDaRequest{PageSize: c.PageSize, PageToken: token}))
		if err != nil {
			return err
		}
		pages = append(pages, time.Since(t0))
		listed += len(resp.Msg.Das)
		if token = resp.Msg.NextPageToken; token == "" {
			break
		}
	}
	list := result{lat: pages, elapsed: time.Since(lstart)}
	list.row(tw, fmt.Sprintf("ListDa page of %d", c.PageSize))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "ListDa: %d arrays in %d pages, %v in all\n", listed, len(pages), list.elapsed.Round(time.Millisecond))
	if create.errs+get.errs > 0 {
		return fmt.Errorf("%d CreateDa and %d GetDa calls failed; first: %v", create.errs, get.errs, firstErr(create, get))
	}
	return nil
}

func fill(ctx context.Context, client vdav1connect.PortalServiceClient, c portalCmd) error {
	r := measure(ctx, c.DNs, c.Clients, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("dn%05d", i)
		_, err := client.CreateDn(ctx, connect.NewRequest(&vdav1.CreateDnRequest{
			Name: name, AgentAddress: fmt.Sprintf("10.0.%d.%d:9720", i/250, i%250+1), Location: fmt.Sprintf("rack%02d", i%20),
			Listener: &vdav1.NvmfListener{Traddr: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Trsvcid: "4420"},
		}))
		if err != nil {
			return err
		}
		for j := range c.PDsPerDN {
			_, err := client.CreatePd(ctx, connect.NewRequest(&vdav1.CreatePdRequest{
				DnName: name, Name: fmt.Sprintf("pd%02d", j),
				Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: 1 << 40}},
			}))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if r.errs > 0 {
		return fmt.Errorf("create dns: %w", r.first)
	}
	r = measure(ctx, c.CNs, c.Clients, func(ctx context.Context, i int) error {
		_, err := client.CreateCn(ctx, connect.NewRequest(&vdav1.CreateCnRequest{
			Name: fmt.Sprintf("cn%04d", i), AgentAddress: fmt.Sprintf("10.1.%d.%d:9721", i/250, i%250+1), Location: fmt.Sprintf("rack%02d", i%20),
			Listener: &vdav1.NvmfListener{Traddr: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), Trsvcid: "4430"},
		}))
		return err
	})
	if r.errs > 0 {
		return fmt.Errorf("create cns: %w", r.first)
	}
	return nil
}

type result struct {
	lat     []time.Duration
	elapsed time.Duration
	errs    int
	first   error
}

// measure calls fn n times from clients goroutines and records each latency.
func measure(ctx context.Context, n, clients int, fn func(ctx context.Context, i int) error) result {
	var (
		next  atomic.Int64
		mu    sync.Mutex
		res   result
		wg    sync.WaitGroup
		start = time.Now()
	)
	for range clients {
		wg.Go(func() {
			var lat []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				err := fn(ctx, i)
				lat = append(lat, time.Since(t0))
				if err != nil {
					mu.Lock()
					if res.errs++; res.first == nil {
						res.first = err
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func (r result) row(w io.Writer, name string) {
	slices.Sort(r.lat)
	pct := func(p float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		return float64(r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))].Microseconds()) / 1000
	}
	ops := float64(len(r.lat)) / r.elapsed.Seconds()
	fmt.Fprintf(w, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t\n", name, len(r.lat), ops, pct(0.50), pct(0.99), pct(1))
}

func firstErr(rs ...result) error {
	for _, r := range rs {
		if r.first != nil {
			return r.first
		}
	}
	return nil
}

func h2cClient() *http.Client {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: protocols}}
}

// benchTLS returns the server's TLS config (nil: h2c), a client for it and
// the URL scheme. With on, it makes a throwaway CA and a certificate for
// 127.0.0.1 in dir, which must outlive the server.
func benchTLS(on bool, dir string) (*tls.Config, *http.Client, string, error) {
	if !on {
		return nil, h2cClient(), "http://", nil
	}
	ca, err := pki.NewCA("vdabench", time.Hour)
	if err != nil {
		return nil, nil, "", err
	}
	cert, key, err := ca.Issue(pki.Leaf{CommonName: "portal", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return nil, nil, "", err
	}
	if err := pki.WriteFiles(dir, "portal", cert, key); err != nil {
		return nil, nil, "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o644); err != nil {
		return nil, nil, "", err
	}
	src, err := pki.Load(pki.Files{Cert: filepath.Join(dir, "portal.crt"), Key: filepath.Join(dir, "portal.key"), CA: filepath.Join(dir, "ca.crt")}, nil)
	if err != nil {
		return nil, nil, "", err
	}
	client, err := pki.ClientOnly(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, nil, "", err
	}
	return src.ServerConfig(false), &http.Client{Transport: &http.Transport{TLSClientConfig: client, ForceAttemptHTTP2: true}}, "https://", nil
}
