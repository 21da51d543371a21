package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Files names the PEM files of one party: its certificate (the leaf,
// optionally followed by intermediates), its key, and the CA bundle its
// peers' certificates must chain to.
type Files struct {
	Cert string
	Key  string
	CA   string
}

// Source holds the certificate, key and CA bundle loaded from Files and
// reloads them when the files change: it looks at most once a second, at a
// handshake. A change that does not load (a key rotated before its
// certificate, a truncated file) keeps the last good set, is logged once,
// and is tried again at the next look.
type Source struct {
	files Files
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	pool      *x509.CertPool
	stamp     [3]stamp // of the files last loaded
	badStamp  [3]stamp // of the last set that failed, logged once
	lastCheck time.Time
}

// stamp tells whether a file changed since it was loaded.
type stamp struct {
	mod  time.Time
	size int64
}

// checkEvery bounds how often a Source looks at its files.
const checkEvery = time.Second

// ErrNoFiles means Files lacks a path.
var ErrNoFiles = errors.New("pki: a certificate, its key and a CA bundle are all needed")

// Load reads f's files, failing if any is missing or bad: a process must
// not start on a broken set. log receives reload failures; nil means
// slog.Default().
func Load(f Files, log *slog.Logger) (*Source, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, ErrNoFiles
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Source{files: f, log: log, now: time.Now}
	st, err := s.stamps()
	if err != nil {
		return nil, err
	}
	cert, pool, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cert, s.pool, s.stamp, s.lastCheck = cert, pool, st, s.now()
	return s, nil
}

func (s *Source) stamps() ([3]stamp, error) {
	var st [3]stamp
	for i, p := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		fi, err := os.Stat(p)
		if err != nil {
			return st, fmt.Errorf("pki: %w", err)
		}
		st[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return st, nil
}

func (s *Source) load() (*tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s and %s: %w", s.files.Cert, s.files.Key, err)
	}
	if cert.Leaf == nil {
		return nil, nil, fmt.Errorf("pki: %s: no certificate", s.files.Cert)
	}
	if s.now().After(cert.Leaf.NotAfter) {
		return nil, nil, fmt.Errorf("pki: %s expired at %s", s.files.Cert, cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("pki: %s: no PEM certificate", s.files.CA)
	}
	return &cert, pool, nil
}

// current returns the certificate and pool, reloading them first if the
// files changed.
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.lastCheck) < checkEvery {
		return s.cert, s.pool
	}
	s.lastCheck = now
	st, err := s.stamps()
	if err != nil || st == s.stamp {
		if err != nil && st != s.badStamp {
			s.badStamp = st
			s.log.Warn("tls files unreadable; keeping the loaded ones", "err", err)
		}
		return s.cert, s.pool
	}
	cert, pool, err := s.load()
	if err != nil {
		if st != s.badStamp {
			s.badStamp = st
			s.log.Warn("tls files changed but do not load; keeping the loaded ones", "err", err)
		}
		return s.cert, s.pool
	}
	s.cert, s.pool, s.stamp = cert, pool, st
	s.log.Info("tls files reloaded", "cert", s.files.Cert, "subject", cert.Leaf.Subject.CommonName,
		"not_after", cert.Leaf.NotAfter.Format(time.RFC3339))
	return s.cert, s.pool
}

// Certificate returns the leaf certificate in use, after a reload if the
// files changed.
func (s *Source) Certificate() *x509.Certificate {
	c, _ := s.current()
	return c.Leaf
}

// ServerConfig is the tls.Config of a server presenting the source's
// certificate. Client certificates are verified against the CA bundle
// when given; with requireClient, one must be given. VDA's agents ask but
// do not require at the TLS layer, so that a call without one is refused
// by the API with a clear UNAUTHENTICATED rather than a handshake error.
func (s *Source) ServerConfig(requireClient bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClient {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := s.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   auth,
				ClientCAs:    pool,
				NextProtos:   []string{"h2", "http/1.1"},
			}, nil
		},
	}
}

// ClientConfig is the tls.Config of a client presenting the source's
// certificate (as loaded at each handshake) and verifying servers the way
// crypto/tls does, name or IP included, against the CA bundle as loaded
// now. An http.Transport dialling with it keeps that bundle for good; to
// follow a rotated bundle too, dial with DialTLSContext.
func (s *Source) ClientConfig() *tls.Config {
	_, pool := s.current()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
	}
}

// DialTLSContext dials addr ("host:port") over TLS with ClientConfig as it
// is at this dial: the certificate and the CA bundle as the files hold
// them now, the server verified by crypto/tls against the host dialled (a
// DNS name or an IP address), HTTP/2 or HTTP/1.1 by ALPN. It has the shape
// of http.Transport.DialTLSContext.
func (s *Source) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("pki: dial %s: %w", addr, err)
	}
	cfg := s.ClientConfig()
	cfg.ServerName = host
	cfg.NextProtos = []string{"h2", "http/1.1"}
	d := tls.Dialer{Config: cfg}
	return d.DialContext(ctx, network, addr)
}

// ClientOnly is the tls.Config of a client without a certificate of its
// own (vdactl, Connect clients of the portal) that verifies servers
// against the CA bundle in caFile, read once; "" means the system's roots.
func ClientOnly(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("pki: %s: no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
