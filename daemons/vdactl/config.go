package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// This file resolves where vdactl connects and with which token: from the
// command line, the environment (VDA_*), the config file and the defaults,
// in that order for each setting.

// Globals are the flags every command takes. Each connection setting is
// taken from its flag, else its VDA_* variable, else the config file, else
// the default.
type Globals struct {
	Portal    string        `help:"Address of the VDA portal: an http(s) URL, or host:port, which means http, or https when a CA file is given (default http://127.0.0.1:9520)." env:"VDA_PORTAL" placeholder:"ADDR"`
	Token     string        `help:"API token, sent as a bearer token. Others can see command lines: prefer --token-file, VDA_TOKEN or the config file." env:"VDA_TOKEN" placeholder:"TOKEN"`
	TokenFile string        `help:"File holding the API token; only its owner may read it." env:"VDA_TOKEN_FILE" type:"path" default:"" placeholder:"FILE"`
	CaFile    string        `name:"ca-file" help:"PEM CA bundle that signed an https portal's certificate (default: the system's roots)." env:"VDA_CA_FILE" type:"path" default:"" placeholder:"FILE"`
	Config    string        `help:"JSON config file with portal, token, token_file and ca_file; only its owner may read it (default $XDG_CONFIG_HOME/vda/vdactl.json or ~/.config/vda/vdactl.json, if it exists; --config= reads none)." env:"VDA_CONFIG" type:"path" default:"" placeholder:"FILE"`
	Output    string        `short:"o" help:"Output format: ${enum}." enum:"table,json" default:"table"`
	Timeout   time.Duration `help:"Deadline of each call to the portal; 0 means none." default:"30s"`
}

// offline is implemented by the commands that never call the portal; they
// run without reading the config file.
type offline interface{ offline() }

// AfterApply merges the connection settings and builds the portal client
// once the flags are known. It reads the config and token files; building
// the client does no network I/O, the first call connects.
func (g *Globals) AfterApply(kctx *kong.Context, c *Client) error {
	if sel := kctx.Selected(); sel != nil && sel.Target.CanAddr() {
		if _, ok := sel.Target.Addr().Interface().(offline); ok {
			return nil
		}
	}
	in := settingInput{
		portal: g.Portal, token: g.Token, tokenFile: g.TokenFile, caFile: g.CaFile, config: g.Config,
		onCommandLine: map[string]bool{},
	}
	for _, p := range kctx.Path {
		if p.Flag != nil {
			in.onCommandLine[p.Flag.Name] = true
		}
	}
	s, err := resolveSettings(in)
	c.conn = s
	if err != nil {
		return err
	}
	portal, err := newPortalClient(s, g.Timeout)
	if err != nil {
		return err
	}
	if host, risky := plainHTTPRisk(s); risky {
		fmt.Fprintf(c.Stderr, "vdactl: warning: the API token goes to %s over plain http; use https\n", host)
	}
	c.Portal = portal
	c.Output = g.Output
	return nil
}

// defaultPortal is the portal address when no flag, variable or config
// file names one.
const defaultPortal = "http://127.0.0.1:9520"

// configFile is the JSON of the config file. Relative paths in it are
// relative to the file's directory.
type configFile struct {
	Portal    string `json:"portal"`
	Token     string `json:"token"`
	TokenFile string `json:"token_file"`
	CAFile    string `json:"ca_file"`
}

// configKeys are the keys configFile knows, in the order of the docs.
var configKeys = []string{"portal", "token", "token_file", "ca_file"}

// configError is an error in the flags, variables or files that say how to
// reach the portal: it is reported without the usage line of a
// command-line error.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func configErrorf(format string, args ...any) error {
	return &configError{fmt.Errorf(format, args...)}
}

// connSettings are the merged connection settings of one run.
type connSettings struct {
	// portal is the base URL of the portal.
	portal string
	// token is the API token; "" means none is sent.
	token string
	// tokenFrom says where the token came from ("--token", "VDA_TOKEN",
	// "token in /path/vdactl.json", ...); "" when there is none.
	tokenFrom string
	// caFile is the CA bundle to verify the portal against; "" means the
	// system's roots.
	caFile string
	// configPath is the config file read, or the default one looked for;
	// "" when there is no default (no home directory).
	configPath string
}

// settingInput is what the command line and the environment gave for the
// connection: the values kong parsed (flag or variable) and which flags
// were on the command line, so that a flag beats a variable.
type settingInput struct {
	portal, token, tokenFile, caFile, config string
	// onCommandLine holds the long names of the flags given on the command
	// line ("token", "ca-file").
	onCommandLine map[string]bool
}

// defaultConfigPath returns $XDG_CONFIG_HOME/vda/vdactl.json, else
// ~/.config/vda/vdactl.json, else "" when neither directory is known.
func defaultConfigPath() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "vda", "vdactl.json")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".config", "vda", "vdactl.json")
	}
	return ""
}

// resolveSettings merges in with the config file and the defaults. It reads
// the config file (in.config, else the default one if it exists) and the
// token file, if any; it does not read the CA file.
func resolveSettings(in settingInput) (connSettings, error) {
	var s connSettings
	path, explicit := in.config, in.config != ""
	if !explicit && !in.onCommandLine["config"] { // --config= means none
		path = defaultConfigPath()
	}
	s.configPath = path
	var cfg configFile
	if path != "" {
		var found bool
		var err error
		cfg, found, err = loadConfig(path)
		if err != nil {
			return s, err
		}
		if !found && explicit {
			return s, configErrorf("config file %s does not exist", path)
		}
	}
	inConfig := func(key string) string { return fmt.Sprintf("%q in %s", key, path) }

	// Each setting: the flag, else the variable, else the config file.
	// kong puts a flag and its variable in the same field, so a value with
	// no flag on the command line came from the variable.
	pick := func(flag, env, val, cfgKey, cfgVal string) (value, from string) {
		switch {
		case in.onCommandLine[flag]:
			return val, "--" + flag
		case val != "":
			return val, env
		case cfgVal != "":
			return cfgVal, inConfig(cfgKey)
		}
		return "", ""
	}

	caFile, _ := pick("ca-file", "VDA_CA_FILE", in.caFile, "ca_file", configPath(path, cfg.CAFile))
	s.caFile = caFile

	portal, portalFrom := pick("portal", "VDA_PORTAL", in.portal, "portal", cfg.Portal)
	if portalFrom == "" {
		portal, portalFrom = defaultPortal, "the default portal"
	}
	base, err := portalURL(portal, s.caFile != "")
	if err != nil {
		return s, configErrorf("%s: %w", portalFrom, err)
	}
	s.portal = base

	token, tokenFrom, err := pickToken(in, cfg, path)
	if err != nil {
		return s, err
	}
	if token != "" {
		if err := checkToken(token); err != nil {
			return s, configErrorf("the token from %s %w", tokenFrom, err)
		}
	}
	s.token, s.tokenFrom = token, tokenFrom
	return s, nil
}

// pickToken returns the token and where it came from: --token or
// --token-file, else VDA_TOKEN or VDA_TOKEN_FILE, else "token" or
// "token_file" in the config file. Two sources at the same level are an
// error. A --token given empty on the command line means no token.
func pickToken(in settingInput, cfg configFile, path string) (token, from string, err error) {
	flagToken, flagFile := in.onCommandLine["token"], in.onCommandLine["token-file"]
	switch {
	case flagToken && flagFile:
		return "", "", configErrorf("give --token or --token-file, not both")
	case flagToken:
		return in.token, "--token", nil
	case flagFile:
		return fromTokenFile(in.tokenFile)
	}
	// No flag: the fields hold VDA_TOKEN and VDA_TOKEN_FILE, if set.
	levels := []struct{ token, file, tokenName, fileName string }{
		{in.token, in.tokenFile, "VDA_TOKEN", "VDA_TOKEN_FILE"},
		{cfg.Token, configPath(path, cfg.TokenFile), fmt.Sprintf("%q in %s", "token", path), fmt.Sprintf("%q in %s", "token_file", path)},
	}
	for _, l := range levels {
		switch {
		case l.token != "" && l.file != "":
			return "", "", configErrorf("%s and %s are both set; keep one", l.tokenName, l.fileName)
		case l.token != "":
			return l.token, l.tokenName, nil
		case l.file != "":
			return fromTokenFile(l.file)
		}
	}
	return "", "", nil
}

func fromTokenFile(path string) (token, from string, err error) {
	t, err := readTokenFile(path)
	if err != nil {
		return "", "", err
	}
	return t, "token file " + path, nil
}

// configPath resolves p, a path from the config file at cfgPath, against
// that file's directory.
func configPath(cfgPath, p string) string {
	if p == "" || filepath.IsAbs(p) || cfgPath == "" {
		return p
	}
	return filepath.Join(filepath.Dir(cfgPath), p)
}

// maxFileSize bounds the config and token files vdactl reads.
const maxFileSize = 64 << 10

// loadConfig reads the config file at path. A file that does not exist is
// not an error: found is false. The file must be private to its owner and
// hold a JSON object of known keys.
func loadConfig(path string) (cfg configFile, found bool, err error) {
	b, err := readPrivate("config file", path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return cfg, true, configErrorf("config file %s: %s", path, jsonProblem(err))
	}
	var unknown []string
	for k := range keys {
		if !slices.Contains(configKeys, k) {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return cfg, true, configErrorf("config file %s: unknown keys %s (known: %s)",
			path, strings.Join(unknown, ", "), strings.Join(configKeys, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&cfg); err != nil {
		return cfg, true, configErrorf("config file %s: %s", path, jsonProblem(err))
	}
	return cfg, true, nil
}

// jsonProblem describes a JSON error without quoting the file's values,
// which may hold the token.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "must hold a JSON object"
		}
		return fmt.Sprintf("%q must be a %s", typ.Field, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "not valid JSON: it ends too soon"
	}
	return "not valid JSON"
}

// readTokenFile reads a token from the file at path: its content with
// surrounding white space trimmed. The file must be private to its owner.
func readTokenFile(path string) (string, error) {
	b, err := readPrivate("token file", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", configErrorf("token file %s does not exist", path)
		}
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", configErrorf("token file %s is empty", path)
	}
	return t, nil
}

// readPrivate reads the file at path after checking, before reading it,
// that neither its group nor others may read or write it. kind names the
// file in errors ("config file"). A missing file is an error wrapping
// fs.ErrNotExist.
func readPrivate(kind, path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, configErrorf("%s: %w", kind, err)
	}
	if fi.IsDir() {
		return nil, configErrorf("%s %s is a directory", kind, path)
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 && runtime.GOOS != "windows" {
		what := "readable by others"
		if mode&0o044 == 0 {
			what = "writable by others"
			if mode&0o022 == 0 {
				what = "open to others"
			}
		}
		return nil, configErrorf("%s %s is %s (mode %#o): chmod 600 %s", kind, path, what, mode, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, configErrorf("%s: %w", kind, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, configErrorf("%s: %w", kind, err)
	}
	if len(b) > maxFileSize {
		return nil, configErrorf("%s %s is larger than %d bytes", kind, path, maxFileSize)
	}
	return b, nil
}

// checkToken reports a token that cannot go in an HTTP header. The error
// never quotes the token.
func checkToken(t string) error {
	for _, r := range t {
		if r <= ' ' || r > '~' {
			return errors.New("has a character other than printable ASCII without spaces")
		}
	}
	return nil
}
