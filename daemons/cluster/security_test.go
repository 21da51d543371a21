package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/pki"
)

// TestPrepareSecurity: the first run makes the CA, later runs keep it and
// issue the leaves again; the leaves carry the identities the agents and
// the control plane check, for loopback; keys are the owner's only.
// --insecure makes nothing and passes --insecure on.
func TestPrepareSecurity(t *testing.T) {
	state := t.TempDir()
	s, err := prepareSecurity(state, false)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(filepath.Join(state, "pki", "ca.crt"))
	require.NoError(t, err)
	firstLeaf, err := os.ReadFile(filepath.Join(state, "pki", "agent.crt"))
	require.NoError(t, err)

	again, err := prepareSecurity(state, false)
	require.NoError(t, err)
	caAgain, err := os.ReadFile(filepath.Join(state, "pki", "ca.crt"))
	require.NoError(t, err)
	assert.Equal(t, caPEM, caAgain, "the CA is kept")
	leafAgain, err := os.ReadFile(filepath.Join(state, "pki", "agent.crt"))
	require.NoError(t, err)
	assert.NotEqual(t, firstLeaf, leafAgain, "the leaves are issued at every start")
	assert.Equal(t, s.cpArgs, again.cpArgs)

	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	for name, identity := range map[string]string{"control-plane": pki.ControlPlane, "agent": pki.Agent} {
		b, err := os.ReadFile(filepath.Join(state, "pki", name+".crt"))
		require.NoError(t, err)
		block, _ := pem.Decode(b)
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		assert.Equal(t, identity, pki.Identity(cert), name)
		for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
			_, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host})
			assert.NoError(t, err, "%s for %s", name, host)
		}
		fi, err := os.Stat(filepath.Join(state, "pki", name+".key"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), name)
	}
	assert.Equal(t, []string{"--tls-cert", filepath.Join(state, "pki", "agent.crt"), "--tls-key", filepath.Join(state, "pki", "agent.key"),
		"--tls-ca", filepath.Join(state, "pki", "ca.crt")}, s.agentArgs)
	assert.Equal(t, "https://", s.scheme())

	plain := t.TempDir()
	in, err := prepareSecurity(plain, true)
	require.NoError(t, err)
	assert.Equal(t, []string{"--insecure"}, in.cpArgs)
	assert.Equal(t, []string{"--insecure"}, in.agentArgs)
	assert.Equal(t, "http://", in.scheme())
	assert.Empty(t, in.caFile())
	assert.NoDirExists(t, filepath.Join(plain, "pki"))
}
