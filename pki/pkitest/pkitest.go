// Package pkitest gives tests a throwaway CA with certificates for their
// servers and clients, in a temporary directory. Only tests import it.
package pkitest

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/pki"
)

// PKI is a test's throwaway CA, with certificates for its daemons and
// clients, in a temporary directory.
type PKI struct {
	Dir string
	CA  *pki.CA
}

// New makes a CA in a temporary directory and writes ca.crt there.
func New(t testing.TB) *PKI {
	t.Helper()
	ca, err := pki.NewCA("test CA", time.Hour)
	require.NoError(t, err)
	p := &PKI{Dir: t.TempDir(), CA: ca}
	require.NoError(t, ca.WriteFiles(p.Dir, "ca"))
	return p
}

// CAFile is the path of the CA bundle.
func (p *PKI) CAFile() string { return filepath.Join(p.Dir, "ca.crt") }

// Files issues a certificate named name with identity, good for
// 127.0.0.1 and localhost, and returns its files.
func (p *PKI) Files(t testing.TB, name, identity string) pki.Files {
	t.Helper()
	cert, key, err := p.CA.Issue(pki.Leaf{CommonName: name, Identity: identity,
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	require.NoError(t, pki.WriteFiles(p.Dir, name, cert, key))
	return pki.Files{Cert: filepath.Join(p.Dir, name+".crt"), Key: filepath.Join(p.Dir, name+".key"), CA: p.CAFile()}
}

// Args issues a certificate as Files does and returns a daemon's TLS
// flags for it.
func (p *PKI) Args(t testing.TB, name, identity string) []string {
	t.Helper()
	f := p.Files(t, name, identity)
	return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
}

// Client is an HTTP client (HTTP/2 over TLS) presenting a certificate
// named name with identity; identity "-" means no client certificate.
func (p *PKI) Client(t testing.TB, name, identity string) *http.Client {
	t.Helper()
	var cfg *tls.Config
	if identity == "-" {
		var err error
		cfg, err = pki.ClientOnly(p.CAFile())
		require.NoError(t, err)
	} else {
		src, err := pki.Load(p.Files(t, name, identity), nil)
		require.NoError(t, err)
		cfg = src.ClientConfig()
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
}

// GetWith gets url with c and returns the status and the body.
func GetWith(t testing.TB, c *http.Client, url string) (code int, body string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
