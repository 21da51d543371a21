package portal_test

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/portal"
	"github.com/virtual-disk-array/vda/portal/portaltest"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
	"github.com/virtual-disk-array/vda/store/storetest"
)

// portalMethods lists every method of PortalService from its descriptor,
// so that a new RPC is tested (and must have a policy) without anyone
// adding it here.
func portalMethods(t *testing.T) []string {
	t.Helper()
	svc := vdav1.File_vda_v1_portal_proto.Services().ByName("PortalService")
	require.NotNil(t, svc)
	ms := svc.Methods()
	out := make([]string, ms.Len())
	for i := range ms.Len() {
		require.False(t, ms.Get(i).IsStreamingClient() || ms.Get(i).IsStreamingServer(),
			"%s streams: the auth interceptor refuses streams; give it a policy first", ms.Get(i).Name())
		out[i] = string(ms.Get(i).Name())
	}
	return out
}

// wantRole is the rule the policy table writes out: reads for any token,
// arrays and exporters for operators, everything else for admins.
func wantRole(method string) auth.Role {
	switch {
	case method == "ListToken":
		return auth.Admin
	case strings.HasPrefix(method, "Get"), strings.HasPrefix(method, "List"), method == "WhoAmI":
		return auth.ReadOnly
	case strings.HasSuffix(method, "Da"), strings.HasSuffix(method, "Exp"):
		return auth.Operator
	}
	return auth.Admin
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	t.Parallel()
	for _, m := range portalMethods(t) {
		t.Run(m, func(t *testing.T) {
			role, ok := portal.Policy("/" + vdav1connect.PortalServiceName + "/" + m)
			require.True(t, ok, "no policy for %s: every PortalService method needs one", m)
			assert.Equal(t, wantRole(m), role)
		})
	}
	for _, p := range []string{"", "/vda.v1.PortalService/Nope", "/grpc.health.v1.Health/Check", "vda.v1.PortalService/GetDn"} {
		_, ok := portal.Policy(p)
		assert.False(t, ok, "%q", p)
	}
}

// callJSON posts "{}" to a PortalService method with the Connect protocol
// and returns the Connect code ("ok" for a success) and the message.
func callJSON(t *testing.T, url, method, authz string) (code, msg string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		url+"/"+vdav1connect.PortalServiceName+"/"+method, strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusOK {
		return "ok", ""
	}
	var e struct{ Code, Message string }
	require.NoError(t, json.Unmarshal(body, &e), "status %d: %s", resp.StatusCode, body)
	return e.Code, e.Message
}

// authEnv is a portal with tokens on, one token per role, and its log.
type authEnv struct {
	url    string
	log    *logBuffer
	reg    *prometheus.Registry
	tokens map[auth.Role]string
	// wrongSecret has the operator token's id and another secret.
	wrongSecret string
	// unknownID is well formed, and not in the store.
	unknownID string
}

func newAuthEnv(t *testing.T, db *store.DB) *authEnv {
	t.Helper()
	e := &authEnv{log: &logBuffer{}, reg: prometheus.NewRegistry(), tokens: map[auth.Role]string{}}
	e.url = serveHandler(t, newHandler(t, db, e.log, portal.HandlerConfig{Registerer: e.reg}))
	for _, r := range auth.Roles {
		e.tokens[r] = portaltest.AddToken(t, db, "t-"+r.String(), r)
	}
	id, _, err := auth.Parse(e.tokens[auth.Operator])
	require.NoError(t, err)
	other, _, _ := auth.NewToken()
	_, secret, err := auth.Parse(other)
	require.NoError(t, err)
	e.wrongSecret = "vda_" + id + "_" + secret
	e.unknownID, _, _ = auth.NewToken()
	return e
}

// secrets lists every secret the test handed out, whole and in parts.
func (e *authEnv) secrets(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, tok := range append([]string{e.wrongSecret, e.unknownID}, e.tokens[auth.ReadOnly], e.tokens[auth.Operator], e.tokens[auth.Admin]) {
		_, secret, err := auth.Parse(tok)
		require.NoError(t, err)
		out = append(out, tok, secret)
	}
	return out
}

// TestAuthEveryMethod calls every PortalService method with every kind
// of credential over plain HTTP and JSON.
func TestAuthEveryMethod(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		e := newAuthEnv(t, db)
		unauthenticated := map[string]string{
			"no header":      "",
			"Bearer garbage": "Bearer garbage",
			"Basic":          "Basic YWRtaW46YWRtaW4=",
			"unknown id":     "Bearer " + e.unknownID,
			"wrong secret":   "Bearer " + e.wrongSecret,
		}
		for _, m := range portalMethods(t) {
			need := wantRole(m)
			t.Run(m, func(t *testing.T) {
				for name, authz := range unauthenticated {
					code, msg := callJSON(t, e.url, m, authz)
					assert.Equal(t, "unauthenticated", code, "%s: %s", name, msg)
				}
				for _, r := range auth.Roles {
					code, msg := callJSON(t, e.url, m, "Bearer "+e.tokens[r])
					if r.Covers(need) {
						assert.NotContains(t, []string{"unauthenticated", "permission_denied"}, code, "%s token: %s", r, msg)
						continue
					}
					assert.Equal(t, "permission_denied", code, "%s token", r)
					assert.Equal(t, `token "t-`+r.String()+`" (`+r.String()+`) may not call vda.v1.PortalService/`+m+`: it needs `+need.String(), msg)
				}
			})
		}
		t.Run("refusals are logged once, by auth, without secrets", func(t *testing.T) {
			logs := e.log.String()
			for _, s := range e.secrets(t) {
				assert.NotContains(t, logs, s)
			}
			assert.NotContains(t, logs, "YWRtaW46YWRtaW4=")
			assert.Contains(t, logs, `level=WARN msg="request refused" procedure=/vda.v1.PortalService/CreateDn code=permission_denied caller=t-operator`)
			assert.Contains(t, logs, "caller=anonymous")
			for l := range strings.Lines(logs) {
				if strings.Contains(l, "msg=request ") {
					assert.NotContains(t, l, "code=unauthenticated", "a refusal reached the request log")
					assert.NotContains(t, l, "code=permission_denied", "a refusal reached the request log")
				}
			}
			// Allowed calls are still logged by the request log.
			assert.Regexp(t, `msg=request procedure=/vda.v1.PortalService/WhoAmI code=ok .*caller=t-read-only token_id=[a-z2-7]{12}`, logs,
				"the request log names the caller")
		})
		t.Run("refusals are counted", func(t *testing.T) {
			families, err := e.reg.Gather()
			require.NoError(t, err)
			var refused, requests float64
			for _, f := range families {
				for _, m := range f.GetMetric() {
					switch f.GetName() {
					case "vda_portal_auth_refusals_total":
						refused += m.GetCounter().GetValue()
					case "vda_portal_requests_total":
						for _, l := range m.GetLabel() {
							if l.GetName() == "code" && (l.GetValue() == "unauthenticated" || l.GetValue() == "permission_denied") {
								requests += m.GetCounter().GetValue()
							}
						}
					}
				}
			}
			// 5 bad credentials per method, and each role below a
			// method's.
			want := 0
			for _, m := range portalMethods(t) {
				want += 5
				for _, r := range auth.Roles {
					if !r.Covers(wantRole(m)) {
						want++
					}
				}
			}
			assert.Equal(t, float64(want), refused)
			assert.Zero(t, requests, "refusals are not counted as requests")
		})
	})
}

// TestAuthOverGRPC: the gRPC protocol carries the same codes.
func TestAuthOverGRPC(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		srv := portaltest.Start(t, db)
		ro := srv.AddToken(t, "ro", auth.ReadOnly)
		_, err := do(t, srv.GRPCClientWithToken("").GetClusterSummary, &vdav1.GetClusterSummaryRequest{})
		requireCode(t, err, connect.CodeUnauthenticated, "missing bearer token")
		_, err = do(t, srv.GRPCClientWithToken("vda_garbage").GetClusterSummary, &vdav1.GetClusterSummaryRequest{})
		requireCode(t, err, connect.CodeUnauthenticated, "malformed API token")
		_, err = do(t, srv.GRPCClientWithToken(ro).CreateDn, &vdav1.CreateDnRequest{})
		requireCode(t, err, connect.CodePermissionDenied, `token "ro" (read-only) may not call vda.v1.PortalService/CreateDn: it needs admin`)
		who := must(t, srv.GRPCClientWithToken(ro).WhoAmI, &vdav1.WhoAmIRequest{}).GetToken()
		assert.Equal(t, "ro", who.GetName())
		assert.Equal(t, vdav1.Role_ROLE_READ_ONLY, who.GetRole())
		mkDn(t, srv.GRPCClient(), "dn1", "")
	})
}

// TestAuthStoreGone: a portal that cannot read its tokens refuses calls
// as Unavailable, not as the caller's fault.
func TestAuthStoreGone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		srv := portaltest.Start(t, db)
		require.NoError(t, db.Close())
		_, err := do(t, srv.Client().GetClusterSummary, &vdav1.GetClusterSummaryRequest{})
		requireCode(t, err, connect.CodeUnavailable, "cannot check the API token now")
	})
}

// TestInsecure: without tokens, every caller is one admin.
func TestInsecure(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		var log logBuffer
		c := vdav1connect.NewPortalServiceClient(http.DefaultClient, serveHandler(t, newHandler(t, db, &log, portal.HandlerConfig{Insecure: true})))
		who := must(t, c.WhoAmI, &vdav1.WhoAmIRequest{}).GetToken()
		assert.Equal(t, "insecure", who.GetName())
		assert.Equal(t, vdav1.Role_ROLE_ADMIN, who.GetRole())
		mkDn(t, c, "dn1", "")
	})
}

// TestTokenRowsHoldNoSecret reads api_tokens raw after CreateToken and
// looks for the secret in every form.
func TestTokenRowsHoldNoSecret(t *testing.T) {
	t.Parallel()
	for _, b := range storetest.Backends() {
		t.Run(string(b.Dialect), func(t *testing.T) {
			t.Parallel()
			dsn := storetest.NewDSN(t, b)
			db, err := store.Open(t.Context(), store.Config{DSN: dsn})
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			c := portaltest.Start(t, db).Client()
			resp := must(t, c.CreateToken, &vdav1.CreateTokenRequest{Name: "ops", Role: vdav1.Role_ROLE_OPERATOR})
			bearer := resp.GetSecret()
			_, secret, err := auth.Parse(bearer)
			require.NoError(t, err)
			raw, err := base64.RawURLEncoding.DecodeString(secret)
			require.NoError(t, err)

			rows := dumpTable(t, dsn, "api_tokens")
			assert.Contains(t, rows, "ops")
			assert.Contains(t, rows, hex.EncodeToString(auth.Hash(secret)), "the hash is stored")
			for _, s := range []string{bearer, secret, secret[:20], secret[20:], hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)} {
				assert.NotContains(t, rows, s)
			}
			assert.False(t, bytes.Contains([]byte(rows), raw), "the raw secret bytes")
		})
	}
}

// dumpTable returns every column of every row of table as text.
func dumpTable(t *testing.T, dsn, table string) string {
	t.Helper()
	var driver, src string
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		driver, src = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	case strings.HasPrefix(dsn, "postgres://"):
		driver, src = "pgx", dsn
	case strings.HasPrefix(dsn, "mysql://"):
		driver, src = "mysql", strings.TrimPrefix(dsn, "mysql://")
	}
	raw, err := sql.Open(driver, src)
	require.NoError(t, err)
	defer raw.Close()
	rows, err := raw.QueryContext(t.Context(), "SELECT * FROM "+table)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var out strings.Builder
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		for _, v := range vals {
			out.Write(v)
			out.WriteByte('|')
		}
		out.WriteByte('\n')
	}
	require.NoError(t, rows.Err())
	return out.String()
}
