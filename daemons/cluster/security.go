package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// security is how the cluster's processes reach each other: over TLS
// with certificates from a throwaway CA kept in <state>/pki (unless
// --insecure), and, for the portal's API, with the admin token the portal
// writes to <state>/admin.token on its first run. vdactl finds both
// through <state>/vdactl.json.
type security struct {
	insecure bool
	dir      string // <state>/pki
	// cpArgs and agentArgs are the TLS flags of the control plane (portal
	// and monitor) and of the agents.
	cpArgs, agentArgs []string
	tokenFile         string
	configFile        string
	// client is the cluster's own HTTP client: it trusts the CA.
	client *http.Client
}

// caValidity is the throwaway CA's lifetime; leaves are issued again at
// every start, for a year.
const caValidity = 10 * 365 * 24 * time.Hour

// prepareSecurity makes, or finds, the cluster's CA and issues the
// control plane's and the agents' certificates, both good for 127.0.0.1
// and localhost.
func prepareSecurity(state string, insecure bool) (*security, error) {
	s := &security{
		insecure:   insecure,
		dir:        filepath.Join(state, "pki"),
		tokenFile:  filepath.Join(state, "admin.token"),
		configFile: filepath.Join(state, "vdactl.json"),
	}
	if insecure {
		s.cpArgs, s.agentArgs = []string{"--insecure"}, []string{"--insecure"}
		s.client = &http.Client{Timeout: 90 * time.Second}
		return s, nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	caCert, caKey := filepath.Join(s.dir, "ca.crt"), filepath.Join(s.dir, "ca.key")
	ca, err := pki.LoadCA(caCert, caKey)
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = pki.NewCA("vda-cluster CA", caValidity); err == nil {
			err = ca.WriteFiles(s.dir, "ca")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the cluster's CA in %s: %w", s.dir, err)
	}
	issue := func(name, identity string) ([]string, error) {
		cert, key, err := ca.Issue(pki.Leaf{CommonName: name, Identity: identity,
			IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"}})
		if err != nil {
			return nil, err
		}
		if err := pki.WriteFiles(s.dir, name, cert, key); err != nil {
			return nil, err
		}
		return []string{"--tls-cert", filepath.Join(s.dir, name+".crt"), "--tls-key", filepath.Join(s.dir, name+".key"), "--tls-ca", caCert}, nil
	}
	if s.cpArgs, err = issue("control-plane", pki.ControlPlane); err != nil {
		return nil, err
	}
	if s.agentArgs, err = issue("agent", pki.Agent); err != nil {
		return nil, err
	}
	cfg, err := pki.ClientOnly(caCert)
	if err != nil {
		return nil, err
	}
	s.client = &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
	return s, nil
}

// scheme is how the cluster's URLs start.
func (s *security) scheme() string {
	if s.insecure {
		return "http://"
	}
	return "https://"
}

// caFile is the CA bundle clients verify the portal with ("" if insecure).
func (s *security) caFile() string {
	if s.insecure {
		return ""
	}
	return filepath.Join(s.dir, "ca.crt")
}

// portalClient reads the admin token the portal wrote and returns a
// client of the portal's API that sends it; it also writes vdactl.json
// (mode 0600) so that vdactl reaches the same portal the same way.
func (s *security) portalClient(portal string) (vdav1connect.PortalServiceClient, error) {
	b, err := os.ReadFile(s.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("the portal's admin token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	cfg := map[string]string{"portal": s.scheme() + portal, "token": token}
	if ca := s.caFile(); ca != "" {
		cfg["ca_file"] = ca
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writePrivate(s.configFile, append(data, '\n')); err != nil {
		return nil, err
	}
	return vdav1connect.NewPortalServiceClient(s.client, s.scheme()+portal, auth.WithBearer(token)), nil
}

// writePrivate writes a file only its owner may read, through a
// temporary file and a rename.
func writePrivate(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	// WriteFile keeps the mode of a file that existed.
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ready answers nil once GET path on addr answers 200, over TLS unless
// the cluster is insecure.
func (s *security) ready(addr, path string) func(context.Context) error {
	return httpReady(s.client, s.scheme()+addr, path)
}
