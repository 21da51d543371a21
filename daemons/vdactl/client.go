package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/pki"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// Client is what every command's Run gets: the portal client and where and
// how to print.
type Client struct {
	// Portal is the Connect client of the portal, built by
	// Globals.AfterApply.
	Portal vdav1connect.PortalServiceClient
	// Output is "table" or "json".
	Output string
	// Stdout receives results; Stderr notes such as the next page token.
	Stdout, Stderr io.Writer
	// conn is how the portal is reached, for the hints of reportError.
	conn connSettings
}

// JSON reports whether the user asked for JSON output.
func (c *Client) JSON() bool { return c.Output == "json" }

// portalURL turns a portal address into a base URL: a bare host:port gets
// http://, or https:// when withCA (a CA file is given, so TLS is meant),
// and a trailing slash is dropped. A plain http URL with a CA file is
// refused: the CA would protect nothing.
func portalURL(addr string, withCA bool) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("the portal address is empty")
	}
	if !strings.Contains(addr, "://") {
		if withCA {
			addr = "https://" + addr
		} else {
			addr = "http://" + addr
		}
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("%q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", addr)
	}
	if u.Scheme == "http" && withCA {
		return "", fmt.Errorf("%q is plain http but a CA file is given: use https:// (or host:port), or drop the CA file (--ca-file=)", addr)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newPortalClient returns a Connect-protocol client of the portal at
// s.portal that sends s.token, if any, as a bearer token and puts the
// given deadline on every call (none when timeout is 0). An https portal
// is verified against s.caFile, else the system's roots; the transport
// speaks HTTP/2 over TLS when the portal offers it, HTTP/1.1 otherwise.
func newPortalClient(s connSettings, timeout time.Duration) (vdav1connect.PortalServiceClient, error) {
	tlsConfig, err := pki.ClientOnly(s.caFile)
	if err != nil {
		return nil, configErrorf("CA file: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	tr.ForceAttemptHTTP2 = true
	var interceptors []connect.Interceptor
	if s.token != "" {
		interceptors = append(interceptors, auth.Bearer(s.token))
	}
	if timeout > 0 {
		interceptors = append(interceptors, timeoutInterceptor(timeout))
	}
	return vdav1connect.NewPortalServiceClient(&http.Client{Transport: tr}, s.portal,
		connect.WithInterceptors(interceptors...)), nil
}

// timeoutInterceptor puts a deadline on each unary call.
func timeoutInterceptor(d time.Duration) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, req)
		}
	}
}

// plainHTTPRisk reports whether a token would cross the network in clear
// text: an http portal that is not on the loopback interface.
func plainHTTPRisk(s connSettings) (host string, risky bool) {
	u, err := url.Parse(s.portal)
	if err != nil || u.Scheme != "http" || s.token == "" {
		return "", false
	}
	host = u.Hostname()
	if host == "localhost" {
		return host, false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return host, false
	}
	return host, true
}

// reportError prints err on w: a portal error as "vdactl: <code>:
// <message>", anything else as "vdactl: <error>". Errors a user can fix
// get a "hint:" line, which uses s to say where a token comes from.
func reportError(w io.Writer, err error, s connSettings) {
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		fmt.Fprintf(w, "vdactl: %s: %s\n", cerr.Code(), cerr.Message())
	} else {
		fmt.Fprintf(w, "vdactl: %v\n", err)
	}
	if hint := errorHint(err, s); hint != "" {
		fmt.Fprintf(w, "hint: %s\n", hint)
	}
}

// errorHint returns what to do about err, or "".
func errorHint(err error, s connSettings) string {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated:
		if s.tokenFrom != "" {
			return fmt.Sprintf("the portal did not accept the token from %s; an admin can check it with 'vdactl token list'", s.tokenFrom)
		}
		cfg := s.configPath
		if cfg == "" {
			cfg = "the config file (--config)"
		}
		return fmt.Sprintf("pass --token, set VDA_TOKEN or put %q in %s", "token", cfg)
	case connect.CodePermissionDenied:
		return "this call needs a token with a higher role"
	}
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	switch {
	case errors.As(err, &herr):
		return "the portal's certificate is not for the host in --portal; use a name or address the certificate lists"
	case errors.As(err, &uerr), errors.As(err, &verr):
		if s.caFile == "" {
			cfg := s.configPath
			if cfg == "" {
				cfg = "the config file (--config)"
			}
			return fmt.Sprintf("pass --ca-file, set VDA_CA_FILE or put %q in %s: the CA bundle that signed the portal's certificate", "ca_file", cfg)
		}
		return fmt.Sprintf("the portal's certificate does not chain to the CA bundle %s", s.caFile)
	}
	return ""
}

// listFlags are the paging flags of every list command.
type listFlags struct {
	PageSize  uint32 `help:"Fetch one page of at most this many items (the portal's default is 100, at most 1000)." placeholder:"N"`
	PageToken string `help:"Fetch the page that starts at this token, printed by a previous list." placeholder:"TOKEN"`
	All       bool   `help:"Follow next page tokens to the last page. The default unless --page-size or --page-token is given."`
}

// maxPages bounds how many pages one list follows, against a portal that
// never stops handing out tokens.
const maxPages = 100000

// collect fetches the pages that l asks for with fetch, which gets a page
// size and token and returns the items and the next page token. It follows
// the tokens to the end when l asks for all pages, and otherwise fetches one
// page and prints its next page token, if any, on c.Stderr. It returns the
// items and the next page token still to fetch ("" after the last page).
func collect[T any](ctx context.Context, c *Client, l listFlags, fetch func(ctx context.Context, size uint32, token string) ([]T, string, error)) ([]T, string, error) {
	all := l.All || (l.PageSize == 0 && l.PageToken == "")
	token := l.PageToken
	seen := map[string]bool{}
	var items []T
	for range maxPages {
		page, next, err := fetch(ctx, l.PageSize, token)
		if err != nil {
			return nil, "", err
		}
		items = append(items, page...)
		if !all || next == "" {
			if next != "" {
				fmt.Fprintf(c.Stderr, "next page token: %s\n", next)
			}
			return items, next, nil
		}
		if seen[next] {
			return nil, "", fmt.Errorf("the portal returned page token %q twice", next)
		}
		seen[next] = true
		token = next
	}
	return nil, "", fmt.Errorf("gave up after %d pages", maxPages)
}
