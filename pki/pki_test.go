package pki_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/pki"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/serve"
)

// issue writes a CA and a leaf named name with identity into dir.
func issue(t *testing.T, ca *pki.CA, dir, name, identity string) pki.Files {
	t.Helper()
	cert, key, err := ca.Issue(pki.Leaf{CommonName: name, Identity: identity, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	require.NoError(t, pki.WriteFiles(dir, name, cert, key))
	caFile := filepath.Join(dir, "ca.crt")
	if _, err := os.Stat(caFile); err != nil {
		require.NoError(t, os.WriteFile(caFile, ca.CertPEM, 0o644))
	}
	return pki.Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: caFile}
}

func TestIssueAndLoad(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("test CA", time.Hour)
	require.NoError(t, err)
	require.NoError(t, ca.WriteFiles(dir, "ca"))
	again, err := pki.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	require.NoError(t, err)
	assert.Equal(t, ca.Cert.Raw, again.Cert.Raw)

	f := issue(t, again, dir, "portal", pki.ControlPlane)
	fi, err := os.Stat(f.Key)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a key is for its owner only")
	src, err := pki.Load(f, nil)
	require.NoError(t, err)
	assert.Equal(t, pki.ControlPlane, pki.Identity(src.Certificate()))
	assert.Equal(t, "portal", src.Certificate().Subject.CommonName)

	_, err = pki.LoadCA(f.Cert, f.Key)
	assert.ErrorContains(t, err, "not a CA certificate")

	for name, broken := range map[string]pki.Files{
		"no CA":         {Cert: f.Cert, Key: f.Key},
		"missing key":   {Cert: f.Cert, Key: filepath.Join(dir, "nope.key"), CA: f.CA},
		"key for other": {Cert: f.Cert, Key: filepath.Join(dir, "ca.key"), CA: f.CA},
		"CA not PEM":    {Cert: f.Cert, Key: f.Key, CA: f.Key + "x"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "CA not PEM" {
				require.NoError(t, os.WriteFile(broken.CA, []byte("junk"), 0o644))
			}
			_, err := pki.Load(broken, nil)
			assert.Error(t, err)
		})
	}
}

// agentServer serves a DnAgentService whose Status answers, over TLS with
// files, behind a PeerCheck for the control plane.
func agentServer(t *testing.T, files pki.Files, log *slog.Logger) string {
	t.Helper()
	src, err := pki.Load(files, log)
	require.NoError(t, err)
	check := pki.PeerCheck{Identity: pki.ControlPlane, Logger: log}
	mux := http.NewServeMux()
	mux.Handle(vdav1connect.NewDnAgentServiceHandler(statusOnly{}, connect.WithInterceptors(check.Interceptor())))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(vdav1connect.DnAgentServiceName)))
	ln, err := serve.Listen("127.0.0.1:0", src.ServerConfig(false))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve.HTTP(ctx, ln, check.Middleware(mux), time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return "https://" + ln.Addr().String()
}

type statusOnly struct {
	vdav1connect.UnimplementedDnAgentServiceHandler
}

func (statusOnly) Status(context.Context, *connect.Request[vdav1.AgentStatusRequest]) (*connect.Response[vdav1.AgentStatusResponse], error) {
	return connect.NewResponse(&vdav1.AgentStatusResponse{}), nil
}

func client(cfg *tls.Config, h2 bool) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2}}
}

// TestPeerCheck: only the control plane's certificate reaches the agent
// API; no certificate is UNAUTHENTICATED, another identity or a foreign
// CA's certificate is refused, over Connect and gRPC alike.
func TestPeerCheck(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("cluster", time.Hour)
	require.NoError(t, err)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	url := agentServer(t, issue(t, ca, dir, "agent", pki.Agent), log)

	cp, err := pki.Load(issue(t, ca, dir, "monitor", pki.ControlPlane), nil)
	require.NoError(t, err)
	other, err := pki.Load(issue(t, ca, dir, "dn2", pki.Agent), nil)
	require.NoError(t, err)
	foreignCA, err := pki.NewCA("elsewhere", time.Hour)
	require.NoError(t, err)
	fdir := t.TempDir()
	foreign := issue(t, foreignCA, fdir, "intruder", pki.ControlPlane)
	// The intruder trusts the cluster's CA, so the handshake gets as far
	// as the client certificate.
	foreign.CA = filepath.Join(dir, "ca.crt")
	intruder, err := pki.Load(foreign, nil)
	require.NoError(t, err)
	anonymous, err := pki.ClientOnly(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		code connect.Code // 0: allowed
	}{
		{"control plane", cp.ClientConfig(), 0},
		{"no certificate", anonymous, connect.CodeUnauthenticated},
		{"agent identity", other.ClientConfig(), connect.CodePermissionDenied},
	} {
		for _, grpc := range []bool{false, true} {
			var opts []connect.ClientOption
			if grpc {
				opts = append(opts, connect.WithGRPC())
			}
			c := vdav1connect.NewDnAgentServiceClient(client(tc.cfg, true), url, opts...)
			_, err := c.Status(context.Background(), connect.NewRequest(&vdav1.AgentStatusRequest{}))
			if tc.code == 0 {
				assert.NoError(t, err, tc.name)
				continue
			}
			assert.Equal(t, tc.code, connect.CodeOf(err), "%s (grpc %v): %v", tc.name, grpc, err)
		}
	}
	assert.Contains(t, logs.String(), "procedure=/vda.v1.DnAgentService/Status")
	assert.Contains(t, logs.String(), "subject=dn2")

	// A certificate from another CA fails the handshake itself.
	c := vdav1connect.NewDnAgentServiceClient(client(intruder.ClientConfig(), true), url)
	_, err = c.Status(context.Background(), connect.NewRequest(&vdav1.AgentStatusRequest{}))
	assert.Error(t, err, "a certificate from another CA")

	// A client that trusts another CA refuses the server.
	wrongRoots, err := pki.ClientOnly(filepath.Join(fdir, "ca.crt"))
	require.NoError(t, err)
	c = vdav1connect.NewDnAgentServiceClient(client(wrongRoots, true), url)
	_, err = c.Status(context.Background(), connect.NewRequest(&vdav1.AgentStatusRequest{}))
	assert.ErrorContains(t, err, "certificate signed by unknown authority")
}

// TestReload: a server and a client pick up rotated files without a
// restart; a broken rotation keeps the last good set.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("cluster", time.Hour)
	require.NoError(t, err)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	files := issue(t, ca, dir, "agent", pki.Agent)
	url := agentServer(t, files, log)
	cp, err := pki.Load(issue(t, ca, dir, "monitor", pki.ControlPlane), nil)
	require.NoError(t, err)

	serial := func() string {
		t.Helper()
		// A new connection each time: the handshake is what reloads.
		tr := &http.Transport{TLSClientConfig: cp.ClientConfig(), DisableKeepAlives: true}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url + "/grpc.health.v1.Health/Check")
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	first := serial()

	// A truncated certificate is not taken.
	require.NoError(t, os.WriteFile(files.Cert, []byte("-----BEGIN CERT"), 0o644))
	time.Sleep(1100 * time.Millisecond)
	assert.Equal(t, first, serial(), "a broken rotation keeps the loaded certificate")
	assert.Contains(t, logs.String(), "tls files changed but do not load")

	issue(t, ca, dir, "agent", pki.Agent)
	time.Sleep(1100 * time.Millisecond)
	second := serial()
	assert.NotEqual(t, first, second, "the rotated certificate is served")
	assert.Contains(t, logs.String(), "tls files reloaded")
	assert.Equal(t, 1, strings.Count(logs.String(), "do not load"), "a bad set is logged once")
}

// TestClientChecksTheAddressDialled: a server certificate from the right
// CA but for another address is refused when the client dials an IP (the
// case where TLS sends no server name), by ClientConfig and by
// DialTLSContext; the right one is taken. DialTLSContext also follows a
// CA bundle rotated on disk.
func TestClientChecksTheAddressDialled(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("cluster", time.Hour)
	require.NoError(t, err)
	require.NoError(t, ca.WriteFiles(dir, "ca"))
	leaf := func(name string, ip net.IP) pki.Files {
		cert, key, err := ca.Issue(pki.Leaf{CommonName: name, Identity: pki.Agent, IPs: []net.IP{ip}})
		require.NoError(t, err)
		require.NoError(t, pki.WriteFiles(dir, name, cert, key))
		return pki.Files{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key"), CA: filepath.Join(dir, "ca.crt")}
	}
	serveWith := func(f pki.Files) string {
		src, err := pki.Load(f, nil)
		require.NoError(t, err)
		ln, err := serve.Listen("127.0.0.1:0", src.ServerConfig(false))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- serve.HTTP(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), time.Second)
		}()
		t.Cleanup(func() { cancel(); <-done })
		return ln.Addr().String()
	}
	elsewhere := serveWith(leaf("other-node", net.IPv4(10, 9, 9, 9)))
	here := serveWith(leaf("this-node", net.IPv4(127, 0, 0, 1)))
	cp, err := pki.Load(issue(t, ca, dir, "monitor", pki.ControlPlane), nil)
	require.NoError(t, err)

	viaConfig := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cp.ClientConfig(), ForceAttemptHTTP2: true}}
	viaDial := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialTLSContext: cp.DialTLSContext, ForceAttemptHTTP2: true}}
	for name, c := range map[string]*http.Client{"ClientConfig": viaConfig, "DialTLSContext": viaDial} {
		_, err := c.Get("https://" + elsewhere + "/")
		assert.ErrorContains(t, err, "10.9.9.9", "%s: a certificate for another address", name)
		resp, err := c.Get("https://" + here + "/")
		require.NoError(t, err, name)
		resp.Body.Close()
		assert.Equal(t, "HTTP/2.0", resp.Proto, name)
	}

	// A new CA on disk: a server with a certificate of it is trusted by
	// the next dial, once the files are looked at again.
	ca2, err := pki.NewCA("cluster, rotated", time.Hour)
	require.NoError(t, err)
	cert, key, err := ca2.Issue(pki.Leaf{CommonName: "rotated", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	require.NoError(t, err)
	require.NoError(t, pki.WriteFiles(dir, "rotated", cert, key))
	rotated := serveWith(pki.Files{Cert: filepath.Join(dir, "rotated.crt"), Key: filepath.Join(dir, "rotated.key"), CA: filepath.Join(dir, "ca.crt")})
	_, err = viaDial.Get("https://" + rotated + "/")
	require.Error(t, err, "not trusted before the bundle holds its CA")
	bundle := append(append([]byte{}, ca.CertPEM...), ca2.CertPEM...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), bundle, 0o644))
	time.Sleep(1100 * time.Millisecond)
	resp, err := viaDial.Get("https://" + rotated + "/")
	require.NoError(t, err, "the rotated bundle is followed")
	resp.Body.Close()
}

// countingBody counts what the handlers read of a request's body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestGuardReadsNoBody: Guard refuses a caller without the identity from
// the TLS state alone, with the interceptor's code, before anything of the
// body is read; the control plane's call is read and served.
func TestGuardReadsNoBody(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("cluster", time.Hour)
	require.NoError(t, err)
	src, err := pki.Load(issue(t, ca, dir, "agent", pki.Agent), nil)
	require.NoError(t, err)
	check := pki.PeerCheck{Identity: pki.ControlPlane, Logger: slog.New(slog.DiscardHandler)}
	var read atomic.Int64
	path, h := vdav1connect.NewDnAgentServiceHandler(statusOnly{}, connect.WithInterceptors(check.Interceptor()))
	guarded := check.Guard(h)
	mux := http.NewServeMux()
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = countingBody{r.Body, &read}
		guarded.ServeHTTP(w, r)
	}))
	ln, err := serve.Listen("127.0.0.1:0", src.ServerConfig(false))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve.HTTP(ctx, ln, mux, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "https://" + ln.Addr().String()

	anonymous, err := pki.ClientOnly(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	// A desired state of some 100 KB: what a forged syncup could carry.
	big := &vdav1.DnSyncupRequest{Desired: &vdav1.DnDesired{DnId: "forged", Generation: 1}}
	for i := range 2000 {
		big.Desired.Pds = append(big.Desired.Pds, &vdav1.PdDesired{Id: fmt.Sprintf("pd-%06d-with-a-long-name", i)})
	}
	for _, grpc := range []bool{false, true} {
		var opts []connect.ClientOption
		if grpc {
			opts = append(opts, connect.WithGRPC())
		}
		c := vdav1connect.NewDnAgentServiceClient(client(anonymous, true), url, opts...)
		_, err := c.Syncup(context.Background(), connect.NewRequest(big))
		assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "grpc %v: %v", grpc, err)
	}
	assert.Zero(t, read.Load(), "a refused call's body was read")

	// The control plane's call is read (statusOnly has no Syncup: the
	// message is decoded, then unimplemented).
	cp, err := pki.Load(issue(t, ca, dir, "monitor", pki.ControlPlane), nil)
	require.NoError(t, err)
	c := vdav1connect.NewDnAgentServiceClient(client(cp.ClientConfig(), true), url)
	_, err = c.Syncup(context.Background(), connect.NewRequest(big))
	assert.Equal(t, connect.CodeUnimplemented, connect.CodeOf(err), "%v", err)
	assert.Greater(t, read.Load(), int64(50000), "the allowed call's body was read")
}
