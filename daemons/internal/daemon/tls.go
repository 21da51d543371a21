package daemon

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/serve"
)

// TLSFlags are the TLS flags of a daemon of the control plane (portal,
// monitor, agents); embed them in its kong CLI. A daemon serves, and
// dials agents, over TLS with them; --insecure is the only way to run
// without, and it says so in the log.
type TLSFlags struct {
	TLSCert  string `name:"tls-cert" help:"This daemon's certificate (PEM; reloaded when the file changes)." env:"VDA_TLS_CERT" placeholder:"FILE"`
	TLSKey   string `name:"tls-key" help:"The certificate's private key (PEM)." env:"VDA_TLS_KEY" placeholder:"FILE"`
	TLSCA    string `name:"tls-ca" help:"CA bundle (PEM) that peers' certificates must chain to." env:"VDA_TLS_CA" placeholder:"FILE"`
	Insecure bool   `help:"Serve and dial in plaintext, and let agents take calls from anyone: only on a network you trust completely." env:"VDA_INSECURE"`
}

// ErrNoTLS means a daemon was given neither its TLS files nor --insecure.
var ErrNoTLS = errors.New("TLS is required: give --tls-cert, --tls-key and --tls-ca (or run with --insecure on a network you trust completely)")

// Load returns the TLS files as a pki.Source, or nil with --insecure
// (after a warning in log). Half a set of files, or files and --insecure
// together, is an error: a daemon never falls back to plaintext quietly.
func (f TLSFlags) Load(log *slog.Logger) (*pki.Source, error) {
	given := f.TLSCert != "" || f.TLSKey != "" || f.TLSCA != ""
	switch {
	case f.Insecure && given:
		return nil, errors.New("--insecure and --tls-* contradict each other: choose one")
	case f.Insecure:
		log.Warn("running INSECURE: control traffic is plaintext and agents accept calls from anyone who can reach them (--insecure)")
		return nil, nil
	case !given:
		return nil, ErrNoTLS
	}
	if f.TLSCert == "" || f.TLSKey == "" || f.TLSCA == "" {
		return nil, errors.New("--tls-cert, --tls-key and --tls-ca go together: give all three")
	}
	return pki.Load(pki.Files{Cert: f.TLSCert, Key: f.TLSKey, CA: f.TLSCA}, log)
}

// Listen listens on addr, over TLS when cfg is not nil (see serve.Listen).
func Listen(addr string, cfg *tls.Config) (net.Listener, error) {
	return serve.Listen(addr, cfg)
}

// CertExpiry is the metric vda_tls_certificate_expiry_timestamp_seconds:
// when the daemon's certificate, as loaded now (reloads included), stops
// being valid, so that an alert can fire before it does.
func CertExpiry(certs *pki.Source) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vda_tls_certificate_expiry_timestamp_seconds",
		Help: "When this daemon's TLS certificate (--tls-cert, as last reloaded) expires, in seconds since the epoch.",
	}, func() float64 { return float64(certs.Certificate().NotAfter.Unix()) })
}
