package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/pki"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/spdk"
)

// TestControlPlaneSecurity runs the one-machine cluster as a newcomer
// does, with its defaults, and attacks it from this process: the portal
// serves TLS only and wants a token; every agent refuses a forged syncup
// with an empty desired state (which, in the design VDA descends from,
// deletes every volume of the node) and a forged heartbeat, whether it
// comes in plaintext, over TLS without a certificate, with an agent's own
// certificate or with a control-plane certificate from another CA; and
// afterwards every node's SPDK objects, the store and the array's
// generation are as they were. It needs no guest.
func TestControlPlaneSecurity(t *testing.T) {
	needBinaries(t)
	c := newCluster(t)
	ctx := context.Background()

	var cfg struct {
		Portal string `json:"portal"`
		CAFile string `json:"ca_file"`
	}
	b, err := os.ReadFile(filepath.Join(c.state, "vdactl.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	require.True(t, strings.HasPrefix(cfg.Portal, "https://"), "TLS by default: %s", cfg.Portal)
	fi, err := os.Stat(filepath.Join(c.state, "vdactl.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "vdactl.json holds the admin token")
	fi, err = os.Stat(filepath.Join(c.state, "pki", "ca.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	trustCA, err := pki.ClientOnly(cfg.CAFile)
	require.NoError(t, err)
	withCA := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: trustCA, ForceAttemptHTTP2: true}}

	// The portal: no plaintext, no call without a token.
	plain := vdav1connect.NewPortalServiceClient(&http.Client{Timeout: 10 * time.Second}, "http://"+c.portal)
	_, err = plain.ListDa(ctx, connect.NewRequest(&vdav1.ListDaRequest{}))
	assert.Error(t, err, "the portal answers plaintext")
	anon := vdav1connect.NewPortalServiceClient(withCA, cfg.Portal)
	_, err = anon.ListDa(ctx, connect.NewRequest(&vdav1.ListDaRequest{}))
	assert.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "%v", err)

	// The agents, and what each node's data plane holds.
	before := c.snapshot()
	da0 := c.da(ctx)
	type agentAt struct{ name, addr, socket string }
	var agents []agentAt
	dns, err := c.api.ListDn(ctx, connect.NewRequest(&vdav1.ListDnRequest{}))
	require.NoError(t, err)
	for _, d := range dns.Msg.GetDns() {
		agents = append(agents, agentAt{"dn:" + d.GetName(), d.GetAgentAddress(), filepath.Join(c.state, d.GetName(), "spdk.sock")})
	}
	cns, err := c.api.ListCn(ctx, connect.NewRequest(&vdav1.ListCnRequest{}))
	require.NoError(t, err)
	for _, n := range cns.Msg.GetCns() {
		agents = append(agents, agentAt{"cn:" + n.GetName(), n.GetAgentAddress(), filepath.Join(c.state, n.GetName(), "spdk.sock")})
	}
	require.Len(t, agents, 4)
	objects := func(socket string) string {
		conn := spdk.Dial(socket, spdk.ConnConfig{})
		defer conn.Close()
		cl := spdk.New(conn)
		bdevs, err := cl.BdevGetBdevs(ctx, spdk.BdevGetBdevsRequest{})
		require.NoError(t, err)
		subs, err := cl.NvmfGetSubsystems(ctx, "")
		require.NoError(t, err)
		var names []string
		for _, b := range bdevs {
			names = append(names, "bdev "+b.Name)
		}
		for _, s := range subs {
			names = append(names, "subsystem "+s.NQN)
			for _, h := range s.Hosts {
				names = append(names, "  host "+h.NQN)
			}
		}
		return strings.Join(names, "\n")
	}
	held := map[string]string{}
	for _, a := range agents {
		held[a.name] = objects(a.socket)
		require.Contains(t, held[a.name], "subsystem nqn.", "%s exports something", a.name)
	}

	// The attackers: certificates the cluster's CA issued to the agents
	// (a stolen agent identity), and a control-plane identity from a CA
	// of the attacker's own.
	stateCA := filepath.Join(c.state, "pki", "ca.crt")
	agentCert, err := pki.Load(pki.Files{Cert: filepath.Join(c.state, "pki", "agent.crt"), Key: filepath.Join(c.state, "pki", "agent.key"), CA: stateCA}, nil)
	require.NoError(t, err)
	own, err := pki.NewCA("attacker", time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	cert, key, err := own.Issue(pki.Leaf{CommonName: "control-plane", Identity: pki.ControlPlane})
	require.NoError(t, err)
	require.NoError(t, pki.WriteFiles(dir, "forged", cert, key))
	forged, err := pki.Load(pki.Files{Cert: filepath.Join(dir, "forged.crt"), Key: filepath.Join(dir, "forged.key"), CA: stateCA}, nil)
	require.NoError(t, err)
	client := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
	}
	attackers := []struct {
		name   string
		scheme string
		client *http.Client
		code   connect.Code // 0: any error
	}{
		{"plaintext", "http://", &http.Client{Timeout: 10 * time.Second}, 0},
		{"TLS without a certificate", "https://", withCA, connect.CodeUnauthenticated},
		{"an agent's certificate", "https://", client(agentCert.ClientConfig()), connect.CodePermissionDenied},
		{"a control-plane certificate from another CA", "https://", client(forged.ClientConfig()), 0},
	}
	for _, a := range agents {
		_, port, _ := net.SplitHostPort(a.addr)
		require.NotEmpty(t, port)
		for _, at := range attackers {
			url := at.scheme + a.addr
			var syncErr, statusErr error
			if strings.HasPrefix(a.name, "dn:") {
				cl := vdav1connect.NewDnAgentServiceClient(at.client, url)
				_, syncErr = cl.Syncup(ctx, connect.NewRequest(&vdav1.DnSyncupRequest{Desired: &vdav1.DnDesired{DnId: "forged", Generation: 1 << 40}, Force: true}))
				_, statusErr = cl.Status(ctx, connect.NewRequest(&vdav1.AgentStatusRequest{}))
			} else {
				cl := vdav1connect.NewCnAgentServiceClient(at.client, url)
				_, syncErr = cl.Syncup(ctx, connect.NewRequest(&vdav1.CnSyncupRequest{Desired: &vdav1.CnDesired{CnId: "forged", Generation: 1 << 40}, Force: true}))
				_, statusErr = cl.Status(ctx, connect.NewRequest(&vdav1.AgentStatusRequest{}))
			}
			for what, err := range map[string]error{"syncup": syncErr, "status": statusErr} {
				require.Error(t, err, "%s: a forged %s from %s was taken", a.name, what, at.name)
				if at.code != 0 {
					assert.Equal(t, at.code, connect.CodeOf(err), "%s: %s from %s: %v", a.name, what, at.name, err)
				}
			}
		}
	}

	// Nothing changed: give the monitor a few heartbeats to notice
	// anything the forgeries might have done, then compare.
	time.Sleep(1500 * time.Millisecond)
	for _, a := range agents {
		assert.Equal(t, held[a.name], objects(a.socket), "%s: the node's SPDK objects changed", a.name)
	}
	assert.Equal(t, before, c.snapshot(), "the store changed")
	after := c.da(ctx)
	assert.Equal(t, da0.GetGeneration(), after.GetGeneration())
	assert.Equal(t, vdav1.Health_HEALTH_OK, after.GetHealth(), "%v", after)

	logs, err := os.ReadFile(filepath.Join(c.state, "logs", "dn0-agent.log"))
	require.NoError(t, err)
	assert.Contains(t, string(logs), "call refused")
}

// TestRolesThroughVdactl: on the running cluster, through vdactl as a
// person uses it, an admin makes a read-only and an operator token; each
// can do what its role covers and gets permission_denied, with the
// hint, for the rest, and the cluster is unchanged by the refusals. The
// admin's syncup of a node goes through the portal to the real agent, and
// with --force too.
func TestRolesThroughVdactl(t *testing.T) {
	needBinaries(t)
	c := newCluster(t)
	secret := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[len(f)-1], "vda_") {
				return f[len(f)-1]
			}
		}
		t.Fatalf("no token in %q", out)
		return ""
	}
	out, err := c.vdactl("token", "create", "ro", "--role", "read-only")
	require.NoError(t, err, out)
	ro := secret(out)
	out, err = c.vdactl("token", "create", "ops", "--role", "operator")
	require.NoError(t, err, out)
	ops := secret(out)
	before := c.snapshot()

	for _, tc := range []struct {
		token string
		args  []string
		ok    bool
	}{
		{ro, []string{"da", "list"}, true},
		{ro, []string{"whoami"}, true},
		{ro, []string{"da", "create", "nope", "--size", "64MiB"}, false},
		{ro, []string{"exp", "delete", "--da", "da0", "host0"}, false},
		{ro, []string{"token", "list"}, false},
		{ops, []string{"da", "get", "da0"}, true},
		{ops, []string{"dn", "delete", "dn0"}, false},
		{ops, []string{"pd", "create", "--dn", "dn0", "m9", "--malloc-size", "16MiB"}, false},
		{ops, []string{"dn", "syncup", "dn0", "--force"}, false},
		{ops, []string{"token", "create", "mine", "--role", "admin"}, false},
	} {
		out, err := c.vdactl(append([]string{"--token", tc.token}, tc.args...)...)
		if tc.ok {
			assert.NoError(t, err, "%v: %s", tc.args, out)
			continue
		}
		require.Error(t, err, "%v must be refused: %s", tc.args, out)
		assert.Contains(t, out, "permission_denied", "%v", tc.args)
		assert.Contains(t, out, "hint:", "%v", tc.args)
		assert.NotContains(t, out, tc.token, "the token is never printed")
	}
	assert.Equal(t, before, c.snapshot(), "the refusals changed nothing")

	// An operator does manage arrays and exporters.
	out, err = c.vdactl("--token", ops, "exp", "create", "--da", "da0", "host1", "--host-nqn", "nqn.2014-08.org.example:host1")
	require.NoError(t, err, out)
	out, err = c.vdactl("--token", ops, "exp", "delete", "--da", "da0", "host1")
	require.NoError(t, err, out)

	// The admin's syncup reaches the agent and comes back with its report.
	for _, args := range [][]string{{"dn", "syncup", "dn0"}, {"cn", "syncup", "cn0", "--force"}} {
		out, err := c.vdactl(args...)
		require.NoError(t, err, "%v: %s", args, out)
	}
	out, err = c.vdactl("token", "delete", "ro")
	require.NoError(t, err, out)
	out, err = c.vdactl("--token", ro, "da", "list")
	require.Error(t, err)
	assert.Contains(t, out, "unauthenticated", "a deleted token is refused at once")
}
