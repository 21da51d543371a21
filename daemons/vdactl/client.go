package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

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
}

// JSON reports whether the user asked for JSON output.
func (c *Client) JSON() bool { return c.Output == "json" }

// portalURL turns the --portal value into a base URL: a bare host:port
// gets http://, and a trailing slash is dropped.
func portalURL(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("--portal is empty")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("--portal %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--portal %q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return "", fmt.Errorf("--portal %q: no host", addr)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newPortalClient returns a Connect-protocol client of the portal at addr
// whose every call has the given deadline (none when timeout is 0).
func newPortalClient(addr string, timeout time.Duration) (vdav1connect.PortalServiceClient, error) {
	base, err := portalURL(addr)
	if err != nil {
		return nil, err
	}
	var opts []connect.ClientOption
	if timeout > 0 {
		opts = append(opts, connect.WithInterceptors(timeoutInterceptor(timeout)))
	}
	return vdav1connect.NewPortalServiceClient(&http.Client{}, base, opts...), nil
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

// reportError prints err on w: a portal error as "vdactl: <code>:
// <message>", anything else as "vdactl: <error>".
func reportError(w io.Writer, err error) {
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		fmt.Fprintf(w, "vdactl: %s: %s\n", cerr.Code(), cerr.Message())
		return
	}
	fmt.Fprintf(w, "vdactl: %v\n", err)
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
