// Package pki gives VDA's control plane its certificates: it issues them
// from a CA (the one-machine cluster's throwaway CA, and tests), loads a
// certificate, its key and a CA bundle from files and reloads them when
// they change, builds the tls.Config of a server and of a client over
// them, and reads the VDA identity a certificate carries.
//
// An identity is a URI subject alternative name under "urn:vda:". The
// control plane (portal and monitor) presents ControlPlane when it calls an
// agent; agents accept Syncup and Status only from it. Which certificate
// may claim which identity is the CA's decision: anyone who can get a
// certificate with the control-plane identity from the cluster's CA can
// drive every agent, so keep that CA's key with the control plane.
package pki

import (
	"crypto/x509"
	"strings"
)

// Identities VDA's certificates carry.
const (
	// ControlPlane is the portal's and the monitor's identity.
	ControlPlane = "urn:vda:control-plane"
	// Agent is a dn or cn agent's identity (as a server).
	Agent = "urn:vda:agent"
)

const identityPrefix = "urn:vda:"

// Identity returns the first VDA identity cert carries, or "" if none.
func Identity(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, identityPrefix) {
			return s
		}
	}
	return ""
}
