// Command client is a plain Connect client of VDA's portal: it creates a
// disk array and an exporter for one host, waits until every controller
// and vd of the array applied it, and prints the `nvme connect` line of
// each controller. It uses nothing of VDA but the generated API package,
// as any program in any language with a Connect or gRPC client could.
//
//	VDA_TOKEN=vda_... go run ./examples/client -portal http://127.0.0.1:9520 -name da1 -size 1GiB \
//	    -host-nqn nqn.2014-08.org.nvmexpress:uuid:8f6c3a2e-0b1d-4c5e-9f7a-1b2c3d4e5f60
//
// The portal wants an API token of role operator or admin, sent as
// "Authorization: Bearer <token>" with every call.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// Options are the client's inputs.
type Options struct {
	Portal, Name, HostNQN string
	Size                  uint64
	VDs, Cntlrs           uint32
	// Wait bounds the wait for the array to be ready; 0 does not wait.
	Wait time.Duration
	// Token is the API token sent with every call.
	Token string
}

func main() {
	var o Options
	var size string
	var vds, cntlrs uint
	flag.StringVar(&o.Portal, "portal", "https://127.0.0.1:9520", "the portal's URL")
	caFile := flag.String("ca-file", "", "CA bundle (PEM) to verify an https portal with (default: the system's roots)")
	flag.StringVar(&o.Token, "token", "", "API token, operator or admin (default $VDA_TOKEN)")
	flag.StringVar(&o.Name, "name", "da1", "name of the array")
	flag.StringVar(&size, "size", "1GiB", "size of the array (bytes, or with KiB/MiB/GiB/TiB)")
	flag.UintVar(&vds, "vds", 2, "vds (RAID0 members)")
	flag.UintVar(&cntlrs, "cntlrs", 2, "controllers")
	flag.StringVar(&o.HostNQN, "host-nqn", "", "host allowed to connect (no exporter when empty)")
	flag.DurationVar(&o.Wait, "wait", time.Minute, "how long to wait for the array to be ready (0: do not wait)")
	flag.Parse()
	if o.Token == "" {
		o.Token = os.Getenv("VDA_TOKEN")
	}
	var err error
	if o.Size, err = parseSize(size); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(2)
	}
	o.VDs, o.Cntlrs = uint32(vds), uint32(cntlrs)
	hc, err := httpClient(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(2)
	}
	if err := run(context.Background(), hc, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, hc connect.HTTPClient, o Options, out io.Writer) error {
	c := vdav1connect.NewPortalServiceClient(hc, o.Portal, connect.WithInterceptors(bearer(o.Token)))
	created, err := c.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
		Name: o.Name, Size: o.Size, CntlrCount: o.Cntlrs,
		Raid: &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: o.VDs}},
	}))
	if err != nil {
		// The portal's errors carry a Connect code a program can branch
		// on: invalid_argument, already_exists, resource_exhausted...
		return fmt.Errorf("create array %s (%s): %w", o.Name, connect.CodeOf(err), err)
	}
	da := created.Msg.Da
	fmt.Fprintf(out, "array %s: %d bytes, nqn %s\n", da.Name, da.Size, da.Nqn)
	for _, vd := range da.Vds {
		fmt.Fprintf(out, "  vd %d on %s/%s\n", vd.Index, vd.DnName, vd.PdName)
	}
	if o.HostNQN != "" {
		if _, err := c.CreateExp(ctx, connect.NewRequest(&vdav1.CreateExpRequest{
			DaName: o.Name, Name: "host", HostNqn: o.HostNQN,
		})); err != nil {
			return fmt.Errorf("create exporter (%s): %w", connect.CodeOf(err), err)
		}
	}
	if o.Wait > 0 {
		if da, err = waitReady(ctx, c, o.Name, o.Wait); err != nil {
			return err
		}
	}
	for _, ct := range da.Cntlrs {
		fmt.Fprintf(out, "  controller %d on %s (%s)\n", ct.Index, ct.CnName,
			strings.ToLower(strings.TrimPrefix(ct.Role.String(), "CNTLR_ROLE_")))
		if o.HostNQN != "" && ct.Listener != nil {
			fmt.Fprintf(out, "    nvme connect -t tcp -a %s -s %s -n %s -q %s\n",
				ct.Listener.Traddr, ct.Listener.Trsvcid, da.Nqn, o.HostNQN)
		}
	}
	return nil
}

// bearer sends the API token with every call.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	}
}

// waitReady polls GetDa until the array's health is OK: every vd and
// controller applied the array's current generation without error.
func waitReady(ctx context.Context, c vdav1connect.PortalServiceClient, name string, d time.Duration) (*vdav1.Da, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		got, err := c.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: name}))
		if err == nil && got.Msg.Da.Health == vdav1.Health_HEALTH_OK {
			return got.Msg.Da, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("health %s", got.Msg.Da.Health)
			}
			return nil, fmt.Errorf("array %s not ready after %s: %w", name, d, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// parseSize reads "1073741824", "1GiB", "512MiB"...
func parseSize(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := uint64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || n == 0 || n > (1<<64-1)/mult {
		return 0, errors.New("size: want a positive number of bytes, optionally with KiB, MiB, GiB or TiB")
	}
	return n * mult, nil
}

// httpClient trusts only the CA bundle in caFile, or the system's roots
// when caFile is empty: a VDA portal's certificate usually comes from the
// cluster's own CA (vda-cluster's is <state-dir>/pki/ca.crt).
func httpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return http.DefaultClient, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}, nil
}
