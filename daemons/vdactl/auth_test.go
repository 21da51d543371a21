package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// writeFile writes content to name in dir with mode and returns its path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), mode))
	require.NoError(t, os.Chmod(path, mode)) // whatever the umask
	return path
}

// runArgs runs the CLI in process with exactly args.
func runArgs(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// TestTokenSources: the token comes from the flags, else the variables,
// else the config file, and goes out as a bearer token.
func TestTokenSources(t *testing.T) {
	// Not parallel: it sets the environment.
	tests := []struct {
		name     string
		env      map[string]string // "FILE" in a value stands for the token file
		config   string            // JSON of the config file; "" for none
		viaXDG   bool              // the config file is the default one, not --config
		args     []string          // before the command; "FILE" stands for the token file
		wantAuth string
	}{
		{name: "none", wantAuth: ""},
		{name: "flag", args: []string{"--token", "flag-tok"}, wantAuth: "Bearer flag-tok"},
		{name: "flag with equals", args: []string{"--token=flag-tok"}, wantAuth: "Bearer flag-tok"},
		{name: "env", env: map[string]string{"VDA_TOKEN": "env-tok"}, wantAuth: "Bearer env-tok"},
		{name: "config", config: `{"token": "cfg-tok"}`, wantAuth: "Bearer cfg-tok"},
		{name: "default config", config: `{"token": "xdg-tok"}`, viaXDG: true, wantAuth: "Bearer xdg-tok"},
		{name: "config from VDA_CONFIG", config: `{"token": "cfg-tok"}`, env: map[string]string{"VDA_CONFIG": "CONFIG"}, wantAuth: "Bearer cfg-tok"},
		{name: "flag beats env and config", args: []string{"--token", "flag-tok"},
			env: map[string]string{"VDA_TOKEN": "env-tok"}, config: `{"token": "cfg-tok"}`, wantAuth: "Bearer flag-tok"},
		{name: "env beats config", env: map[string]string{"VDA_TOKEN": "env-tok"}, config: `{"token": "cfg-tok"}`,
			wantAuth: "Bearer env-tok"},
		{name: "empty flag sends none", args: []string{"--token="}, env: map[string]string{"VDA_TOKEN": "env-tok"},
			config: `{"token": "cfg-tok"}`, wantAuth: ""},
		{name: "token file flag", args: []string{"--token-file", "FILE"}, wantAuth: "Bearer file-tok"},
		{name: "token file flag beats VDA_TOKEN", args: []string{"--token-file", "FILE"},
			env: map[string]string{"VDA_TOKEN": "env-tok"}, wantAuth: "Bearer file-tok"},
		{name: "token flag beats VDA_TOKEN_FILE", args: []string{"--token", "flag-tok"},
			env: map[string]string{"VDA_TOKEN_FILE": "FILE"}, wantAuth: "Bearer flag-tok"},
		{name: "token file env", env: map[string]string{"VDA_TOKEN_FILE": "FILE"}, wantAuth: "Bearer file-tok"},
		{name: "token file env beats config", env: map[string]string{"VDA_TOKEN_FILE": "FILE"},
			config: `{"token": "cfg-tok"}`, wantAuth: "Bearer file-tok"},
		{name: "token file in config, relative", config: `{"token_file": "tok"}`, wantAuth: "Bearer file-tok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, url := newFake(t)
			dir := t.TempDir()
			tokenFile := writeFile(t, dir, "tok", "file-tok\n", 0o600)
			xdg := t.TempDir()
			t.Setenv("XDG_CONFIG_HOME", xdg)
			var args []string
			var cfgPath string
			if tc.config != "" {
				if tc.viaXDG {
					writeFile(t, xdg, "vda/vdactl.json", tc.config, 0o600)
				} else {
					cfgPath = writeFile(t, dir, "vdactl.json", tc.config, 0o600)
					if tc.env["VDA_CONFIG"] == "" {
						args = append(args, "--config", cfgPath)
					}
				}
			}
			for k, v := range tc.env {
				v = strings.ReplaceAll(v, "FILE", tokenFile)
				v = strings.ReplaceAll(v, "CONFIG", cfgPath)
				t.Setenv(k, v)
			}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "FILE", tokenFile))
			}
			args = append(args, "--portal", url, "dn", "get", "dn0")
			runArgs(t, args...).ok(t)
			calls := fake.received()
			require.Len(t, calls, 1)
			assert.Equal(t, tc.wantAuth, calls[0].auth)
		})
	}
}

// TestPortalSources: the portal comes from --portal, else VDA_PORTAL, else
// the config file.
func TestPortalSources(t *testing.T) {
	// Not parallel: it sets the environment.
	fakeFlag, urlFlag := newFake(t)
	fakeEnv, urlEnv := newFake(t)
	fakeCfg, urlCfg := newFake(t)
	cfg := writeFile(t, t.TempDir(), "vdactl.json", `{"portal": "`+strings.TrimPrefix(urlCfg, "http://")+`"}`, 0o600)

	runArgs(t, "--config", cfg, "dn", "get", "dn0").ok(t)
	assert.Len(t, fakeCfg.received(), 1)

	t.Setenv("VDA_PORTAL", urlEnv)
	runArgs(t, "--config", cfg, "dn", "get", "dn0").ok(t)
	assert.Len(t, fakeEnv.received(), 1)

	runArgs(t, "--config", cfg, "--portal", urlFlag, "dn", "get", "dn0").ok(t)
	assert.Len(t, fakeFlag.received(), 1)
	assert.Len(t, fakeCfg.received(), 1)
	assert.Len(t, fakeEnv.received(), 1)
}

// TestConfigErrors: a config or token file that others may read, unknown
// keys, a missing file named explicitly and conflicting sources are
// refused before any call.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	const secret = "vda_abc_SeCrEt"
	tests := []struct {
		name    string
		config  string      // JSON; "" for no --config
		mode    os.FileMode // of the config file; 0 means 0600
		args    []string    // "DIR" stands for the directory of the files
		wantErr string      // "DIR" likewise
	}{
		{name: "config readable by others", config: `{"token": "` + secret + `"}`, mode: 0o644,
			wantErr: "config file DIR/vdactl.json is readable by others (mode 0644): chmod 600 DIR/vdactl.json"},
		{name: "config readable by the group", config: `{}`, mode: 0o640,
			wantErr: "config file DIR/vdactl.json is readable by others (mode 0640): chmod 600 DIR/vdactl.json"},
		{name: "config writable by the group", config: `{}`, mode: 0o620,
			wantErr: "config file DIR/vdactl.json is writable by others (mode 0620): chmod 600 DIR/vdactl.json"},
		{name: "unknown keys", config: `{"portl": "x", "token": "` + secret + `", "tokn": "y"}`,
			wantErr: `config file DIR/vdactl.json: unknown keys "portl", "tokn" (known: portal, token, token_file, ca_file)`},
		{name: "not JSON", config: `{"token": "` + secret + `",}`, wantErr: "not valid JSON at byte"},
		{name: "not an object", config: `["` + secret + `"]`, wantErr: "must hold a JSON object"},
		{name: "wrong type", config: `{"token": 7}`, wantErr: `"token" must be a string`},
		{name: "explicit config missing", args: []string{"--config", "DIR/nope.json"},
			wantErr: "config file DIR/nope.json does not exist"},
		{name: "token file readable by others", args: []string{"--token-file", "DIR/open-token"},
			wantErr: "token file DIR/open-token is readable by others (mode 0644): chmod 600 DIR/open-token"},
		{name: "token file in config readable by others", config: `{"token_file": "open-token"}`,
			wantErr: "token file DIR/open-token is readable by others (mode 0644)"},
		{name: "token file missing", args: []string{"--token-file", "DIR/nope"}, wantErr: "token file DIR/nope does not exist"},
		{name: "token file empty", args: []string{"--token-file", "DIR/empty-token"}, wantErr: "token file DIR/empty-token is empty"},
		{name: "token and token file", args: []string{"--token", secret, "--token-file", "DIR/token"},
			wantErr: "give --token or --token-file, not both"},
		{name: "token and token file in config", config: `{"token": "` + secret + `", "token_file": "token"}`,
			wantErr: `"token" in DIR/vdactl.json and "token_file" in DIR/vdactl.json are both set`},
		{name: "token with a space", args: []string{"--token", secret + " x"},
			wantErr: "the token from --token has a character other than printable ASCII"},
		{name: "CA file missing", args: []string{"--portal", "127.0.0.1:1", "--ca-file", "DIR/nope.pem"},
			wantErr: "CA file: pki: open DIR/nope.pem: no such file or directory"},
		{name: "CA file not PEM", args: []string{"--portal", "127.0.0.1:1", "--ca-file", "DIR/token"},
			wantErr: "CA file: pki: DIR/token: no PEM certificate"},
		{name: "CA file with plain http", config: `{"ca_file": "ca.pem"}`, args: []string{"--portal", "http://127.0.0.1:1"},
			wantErr: `--portal: "http://127.0.0.1:1" is plain http but a CA file is given`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, url := newFake(t)
			dir := t.TempDir()
			writeFile(t, dir, "open-token", secret, 0o644)
			writeFile(t, dir, "empty-token", "\n", 0o600)
			writeFile(t, dir, "token", secret, 0o600)
			writeFile(t, dir, "ca.pem", "", 0o600)
			args := []string{"--portal", url}
			if slices.Contains(tc.args, "--portal") {
				args = nil
			}
			if tc.config != "" {
				mode := tc.mode
				if mode == 0 {
					mode = 0o600
				}
				args = append(args, "--config", writeFile(t, dir, "vdactl.json", tc.config, mode))
			}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "DIR", dir))
			}
			r := runArgs(t, append(args, "dn", "list")...)
			require.Error(t, r.err)
			assert.True(t, strings.HasPrefix(r.stderr, "vdactl: error: "), r.stderr)
			assert.Contains(t, r.stderr, strings.ReplaceAll(tc.wantErr, "DIR", dir))
			assert.NotContains(t, r.stderr, "--help", "no usage line for a config error")
			assert.NotContains(t, r.stderr, "SeCrEt")
			assert.Empty(t, r.stdout)
			assert.Empty(t, fake.received())
		})
	}
}

// TestDefaultConfig: a missing default config file is no error; one that
// others may read is refused; the commands that call no portal do not
// read it.
func TestDefaultConfig(t *testing.T) {
	// Not parallel: it sets the environment.
	fake, url := newFake(t)
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	runArgs(t, "--portal", url, "dn", "get", "dn0").ok(t)

	path := writeFile(t, xdg, "vda/vdactl.json", `{}`, 0o604)
	r := runArgs(t, "--portal", url, "dn", "get", "dn0")
	require.Error(t, r.err)
	assert.Equal(t, "vdactl: error: config file "+path+" is readable by others (mode 0604): chmod 600 "+path+"\n", r.stderr)
	assert.Len(t, fake.received(), 1)

	runArgs(t, "version").ok(t)
	runArgs(t, "completion", "bash").ok(t)

	// Without XDG_CONFIG_HOME: ~/.config.
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", home)
	path = writeFile(t, home, ".config/vda/vdactl.json", `{"token": "home-tok"}`, 0o600)
	assert.Equal(t, path, defaultConfigPath())
	runArgs(t, "--portal", url, "dn", "get", "dn0").ok(t)
	calls := fake.received()
	require.Len(t, calls, 2)
	assert.Equal(t, "Bearer home-tok", calls[1].auth)
}

// TestEmptyFlags: a flag given empty on the command line beats the
// config file: --ca-file= means no CA file, --config= no config file.
func TestEmptyFlags(t *testing.T) {
	// Not parallel: it sets the environment.
	fake, url := newFake(t)
	dir := t.TempDir()
	writeFile(t, dir, "ca.pem", "", 0o600)
	cfg := writeFile(t, dir, "vdactl.json", `{"portal": "`+url+`", "ca_file": "ca.pem", "token": "cfg-tok"}`, 0o600)
	r := runArgs(t, "--config", cfg, "dn", "get", "dn0")
	require.Error(t, r.err)
	assert.Contains(t, r.stderr, "is plain http but a CA file is given")

	runArgs(t, "--config", cfg, "--ca-file=", "dn", "get", "dn0").ok(t)
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	writeFile(t, xdg, "vda/vdactl.json", `{"token": "xdg-tok"}`, 0o600)
	runArgs(t, "--config=", "--portal", url, "dn", "get", "dn0").ok(t)
	calls := fake.received()
	require.Len(t, calls, 2)
	assert.Equal(t, "Bearer cfg-tok", calls[0].auth)
	assert.Empty(t, calls[1].auth)
}

// TestTokenNeverPrinted: the token appears in no output, error or help.
func TestTokenNeverPrinted(t *testing.T) {
	// Not parallel: it sets the environment.
	const secret = "vda_0123abcd_TopSecretValue"
	fake, url := newFake(t)
	on(fake, "WhoAmI", func(context.Context, *vdav1.WhoAmIRequest) (*vdav1.WhoAmIResponse, error) {
		return &vdav1.WhoAmIResponse{Token: &vdav1.Token{Name: "ci", Role: vdav1.Role_ROLE_ADMIN, Id: "0123abcd"}}, nil
	})
	on(fake, "GetDn", func(context.Context, *vdav1.GetDnRequest) (*vdav1.GetDnResponse, error) {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown token"))
	})
	on(fake, "DeleteDn", func(context.Context, *vdav1.DeleteDnRequest) (*vdav1.DeleteDnResponse, error) {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("role read-only cannot call DeleteDn"))
	})
	dir := t.TempDir()
	badCfg := writeFile(t, dir, "bad.json", `{"token": "`+secret+`", "extra": "`+secret+`"}`, 0o600)
	openCfg := writeFile(t, dir, "open.json", `{"token": "`+secret+`"}`, 0o644)
	t.Setenv("VDA_TOKEN", secret)
	runs := []result{
		runArgs(t, "--portal", url, "whoami"),
		runArgs(t, "--portal", url, "-o", "json", "whoami"),
		runArgs(t, "--portal", url, "--token", secret, "-o", "json", "whoami"),
		runArgs(t, "--portal", url, "dn", "get", "dn0"),
		runArgs(t, "--portal", url, "dn", "delete", "dn0"),
		runArgs(t, "--portal", url, "--config", badCfg, "--token-file", filepath.Join(dir, "nope"), "dn", "list"),
		runArgs(t, "--portal", url, "--config", openCfg, "dn", "list"),
		runArgs(t, "--portal", url, "--token", secret+"\n", "dn", "list"),
		runArgs(t, "--help"),
		runArgs(t, "dn", "get", "--help"),
		runArgs(t, "--portal", url, "--token", secret, "dn", "get"), // a parse error
	}
	for i, r := range runs {
		assert.NotContains(t, r.stdout, "TopSecret", "run %d", i)
		assert.NotContains(t, r.stderr, "TopSecret", "run %d", i)
		if r.err != nil {
			assert.NotContains(t, r.err.Error(), "TopSecret", "run %d", i)
		}
	}
	assert.Regexp(t, `"name":\s+"ci"`, runs[1].stdout)
	for _, c := range fake.received() {
		assert.Equal(t, "Bearer "+secret, c.auth)
	}
}

// TestAuthHints: unauthenticated and permission-denied errors say what to
// do.
func TestAuthHints(t *testing.T) {
	t.Parallel()
	defaultCfg := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "vda", "vdactl.json")
	tests := []struct {
		name       string
		args       []string
		err        error
		wantStderr string
	}{
		{"no token", []string{"dn", "list"}, connect.NewError(connect.CodeUnauthenticated, errors.New("missing token")),
			"vdactl: unauthenticated: missing token\n" +
				`hint: pass --token, set VDA_TOKEN or put "token" in ` + defaultCfg + "\n"},
		{"explicit config", []string{"--config", "CFG", "dn", "list"}, connect.NewError(connect.CodeUnauthenticated, errors.New("missing token")),
			"vdactl: unauthenticated: missing token\n" +
				`hint: pass --token, set VDA_TOKEN or put "token" in CFG` + "\n"},
		{"token refused", []string{"--token", "vda_x_y", "dn", "list"}, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown token")),
			"vdactl: unauthenticated: unknown token\n" +
				"hint: the portal did not accept the token from --token; an admin can check it with 'vdactl token list'\n"},
		{"permission denied", []string{"--token", "vda_x_y", "dn", "list"}, connect.NewError(connect.CodePermissionDenied, errors.New("role read-only cannot call ListDn")),
			"vdactl: permission_denied: role read-only cannot call ListDn\n" +
				"hint: this call needs a token with a higher role\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, url := newFake(t)
			fake.handlers["ListDn"] = func(context.Context, proto.Message) (proto.Message, error) { return nil, tc.err }
			cfg := writeFile(t, t.TempDir(), "vdactl.json", "{}", 0o600)
			args := []string{"--portal", url}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "CFG", cfg))
			}
			r := runArgs(t, args...)
			require.Error(t, r.err)
			assert.Equal(t, connect.CodeOf(tc.err), connect.CodeOf(r.err))
			assert.Equal(t, strings.ReplaceAll(tc.wantStderr, "CFG", cfg), r.stderr)
		})
	}
}

// TestTLS: an https portal is verified against the CA file; host:port
// means https when a CA file is given; without the CA the call fails with
// the x509 error and a hint.
func TestTLS(t *testing.T) {
	t.Parallel()
	tf := newTLSFake(t)
	hostPort := strings.TrimPrefix(tf.url, "https://")
	cfgDir := t.TempDir()
	caCopy, err := os.ReadFile(tf.caFile)
	require.NoError(t, err)
	writeFile(t, cfgDir, "ca.pem", string(caCopy), 0o644) // a CA bundle is public
	cfg := writeFile(t, cfgDir, "vdactl.json", `{"portal": "`+hostPort+`", "ca_file": "ca.pem", "token": "cfg-tok"}`, 0o600)

	runArgs(t, "--portal", tf.url, "--ca-file", tf.caFile, "--token", "tls-tok", "dn", "get", "dn0").ok(t)
	runArgs(t, "--portal", hostPort, "--ca-file", tf.caFile, "dn", "get", "dn0").ok(t)
	runArgs(t, "--config", cfg, "dn", "get", "dn0").ok(t)
	calls := tf.received()
	require.Len(t, calls, 3)
	assert.Equal(t, "Bearer tls-tok", calls[0].auth)
	assert.Empty(t, calls[1].auth)
	assert.Equal(t, "Bearer cfg-tok", calls[2].auth)
	assert.Equal(t, []string{"HTTP/2.0", "HTTP/2.0", "HTTP/2.0"}, tf.httpVersions())

	r := runArgs(t, "--portal", tf.url, "dn", "get", "dn0")
	require.Error(t, r.err)
	assert.Equal(t, connect.CodeUnavailable, connect.CodeOf(r.err))
	assert.Contains(t, r.stderr, "x509: certificate signed by unknown authority")
	assert.Contains(t, r.stderr, "\nhint: pass --ca-file, set VDA_CA_FILE or put \"ca_file\" in ")

	// A CA that did not sign the portal's certificate.
	otherCA := writeFile(t, t.TempDir(), "other.pem", selfSignedPEM(t), 0o644)
	r = runArgs(t, "--portal", tf.url, "--ca-file", otherCA, "dn", "get", "dn0")
	require.Error(t, r.err)
	assert.Contains(t, r.stderr, "x509: certificate signed by unknown authority")
	assert.Contains(t, r.stderr, "\nhint: the portal's certificate does not chain to the CA bundle "+otherCA+"\n")

	// A name the certificate does not list.
	r = runArgs(t, "--portal", strings.Replace(tf.url, "127.0.0.1", "localhost", 1), "--ca-file", tf.caFile, "dn", "get", "dn0")
	require.Error(t, r.err)
	assert.Contains(t, r.stderr, "x509: certificate is valid for")
	assert.Contains(t, r.stderr, "\nhint: the portal's certificate is not for the host in --portal")
	assert.Len(t, tf.received(), 3)
}

// selfSignedPEM returns a PEM CA certificate that signed nothing.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestPlainHTTPRisk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		portal, token string
		want          bool
	}{
		{"http://10.0.0.1:9520", "t", true},
		{"http://portal.example:9520", "t", true},
		{"http://10.0.0.1:9520", "", false},
		{"https://10.0.0.1:9520", "t", false},
		{"http://127.0.0.1:9520", "t", false},
		{"http://[::1]:9520", "t", false},
		{"http://localhost:9520", "t", false},
	}
	for _, tc := range tests {
		_, got := plainHTTPRisk(connSettings{portal: tc.portal, token: tc.token})
		assert.Equal(t, tc.want, got, "%s token=%q", tc.portal, tc.token)
	}
}

func TestTokenOutput(t *testing.T) {
	t.Parallel()
	const secret = "vda_9f8e7d6c_NewSecretValue"
	fake, url := newFake(t)
	tok := &vdav1.Token{Name: "ci", Role: vdav1.Role_ROLE_OPERATOR, Id: "9f8e7d6c", Description: "the CI", CreatedAtMs: 1700000000000}
	on(fake, "CreateToken", func(context.Context, *vdav1.CreateTokenRequest) (*vdav1.CreateTokenResponse, error) {
		return &vdav1.CreateTokenResponse{Token: tok, Secret: secret}, nil
	})
	on(fake, "ListToken", func(context.Context, *vdav1.ListTokenRequest) (*vdav1.ListTokenResponse, error) {
		return &vdav1.ListTokenResponse{Tokens: []*vdav1.Token{
			tok, {Name: "ro", Role: vdav1.Role_ROLE_READ_ONLY, Id: "00aa"},
		}}, nil
	})
	on(fake, "WhoAmI", func(context.Context, *vdav1.WhoAmIRequest) (*vdav1.WhoAmIResponse, error) {
		return &vdav1.WhoAmIResponse{Token: tok}, nil
	})

	r := vdactl(t, url, "token", "create", "ci", "--role", "operator").ok(t)
	assert.Equal(t, 1, strings.Count(r.stdout, secret), r.stdout)
	assert.Regexp(t, `(?m)^Secret: +`+secret+`$`, r.stdout)
	assert.Regexp(t, `(?m)^Role: +operator$`, r.stdout)
	assert.Regexp(t, `(?m)^ID: +9f8e7d6c$`, r.stdout)
	assert.Contains(t, r.stdout, "\nSave the secret now: it will not be shown again.\n")

	r = vdactl(t, url, "-o", "json", "token", "create", "ci", "--role", "operator").ok(t)
	var created vdav1.CreateTokenResponse
	require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &created))
	assertProto(t, &vdav1.CreateTokenResponse{Token: tok, Secret: secret}, &created)
	assert.Regexp(t, `"role":\s+"ROLE_OPERATOR"`, r.stdout)

	r = vdactl(t, url, "token", "list").ok(t)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 3, r.stdout)
	assert.Regexp(t, `^NAME +ROLE +ID +CREATED +DESCRIPTION$`, lines[0])
	assert.Regexp(t, `^ci +operator +9f8e7d6c +2023-11-14T22:13:20Z +the CI$`, lines[1])
	assert.Regexp(t, `^ro +read-only +00aa +- +-$`, lines[2])

	r = vdactl(t, url, "token", "delete", "ci").ok(t)
	assert.Equal(t, "token ci deleted\n", r.stdout)

	r = vdactl(t, url, "whoami").ok(t)
	assert.Regexp(t, `(?m)^Name: +ci$`, r.stdout)
	assert.Regexp(t, `(?m)^Role: +operator$`, r.stdout)
	assert.NotContains(t, r.stdout, "Secret")
}

func TestSyncupOutput(t *testing.T) {
	t.Parallel()
	fake, url := newFake(t)
	dnReport := &vdav1.DnReport{
		Generation: 7,
		Pds: []*vdav1.PdReport{
			{Id: "pd-a", Capacity: 1 << 30, Free: 1 << 29},
			{Id: "pd-b", Error: "no such device"},
		},
		Vds: []*vdav1.ResourceReport{{Id: "vd-1"}, {Id: "vd-2", Error: "lvol missing"}},
	}
	cnReport := &vdav1.CnReport{Generation: 3, Cntlrs: []*vdav1.ResourceReport{{Id: "cntlr-1"}}}
	on(fake, "SyncupDn", func(_ context.Context, req *vdav1.SyncupDnRequest) (*vdav1.SyncupDnResponse, error) {
		return &vdav1.SyncupDnResponse{Report: dnReport}, nil
	})
	on(fake, "SyncupCn", func(_ context.Context, req *vdav1.SyncupCnRequest) (*vdav1.SyncupCnResponse, error) {
		if req.GetName() == "cn9" {
			return &vdav1.SyncupCnResponse{Report: &vdav1.CnReport{Generation: 1, Error: "spdk unreachable"}}, nil
		}
		return &vdav1.SyncupCnResponse{Report: cnReport}, nil
	})

	r := vdactl(t, url, "dn", "syncup", "dn0", "--force")
	require.Error(t, r.err)
	assert.Equal(t, "vdactl: dn dn0: the agent reported 2 errors\n", r.stderr)
	assert.Equal(t, ""+
		"Generation: 7\n"+
		"Error:      -\n"+
		"\n"+
		"PDs:\n"+
		"ID    CAPACITY  FREE       ERROR\n"+
		"pd-a  1.0 GiB   512.0 MiB  -\n"+
		"pd-b  0 B       0 B        no such device\n"+
		"\n"+
		"VDs:\n"+
		"ID    ERROR\n"+
		"vd-1  -\n"+
		"vd-2  lvol missing\n", r.stdout)
	assertProto(t, &vdav1.SyncupDnRequest{Name: "dn0", Force: true}, fake.only(t, "SyncupDn"))

	r = vdactl(t, url, "cn", "syncup", "cn0").ok(t)
	assert.Equal(t, ""+
		"Generation: 3\n"+
		"Error:      -\n"+
		"\n"+
		"Controllers:\n"+
		"ID       ERROR\n"+
		"cntlr-1  -\n", r.stdout)

	r = vdactl(t, url, "cn", "syncup", "cn9")
	require.Error(t, r.err)
	assert.Equal(t, "vdactl: cn cn9: the agent reported 1 error\n", r.stderr)
	assert.Contains(t, r.stdout, "Error:      spdk unreachable\n")
	assert.Contains(t, r.stdout, "Controllers:\n  (none)\n")

	r = vdactl(t, url, "-o", "json", "dn", "syncup", "dn0")
	require.Error(t, r.err)
	var got vdav1.SyncupDnResponse
	require.NoError(t, protojson.Unmarshal([]byte(r.stdout), &got))
	assertProto(t, &vdav1.SyncupDnResponse{Report: dnReport}, &got)
}
