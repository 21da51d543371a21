package portal

import (
	"encoding/base64"
	"strings"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/store"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// pageOf turns a request's page_size and page_token into a store page that
// asks for one row more than the page, to learn whether another follows.
// A token names the list it came from, so one list's token is refused by
// another.
func pageOf(list string, size uint32, token string) (store.Page, int, error) {
	n := int(size)
	switch {
	case n == 0:
		n = defaultPageSize
	case n > maxPageSize:
		n = maxPageSize
	}
	p := store.Page{Limit: n + 1}
	if token == "" {
		return p, n, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	after, ok := strings.CutPrefix(string(raw), list+":")
	if err != nil || !ok || after == "" {
		return p, n, vda.Invalidf("page_token %q is not a token of this list", token)
	}
	p.After = after
	return p, n, nil
}

// nextToken trims rows to the page size and returns the token of the next
// page, or "" when rows was the last page.
func nextToken[T any](list string, rows []T, n int, name func(T) string) ([]T, string) {
	if len(rows) <= n {
		return rows, ""
	}
	rows = rows[:n]
	return rows, base64.RawURLEncoding.EncodeToString([]byte(list + ":" + name(rows[n-1])))
}
