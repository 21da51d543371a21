package proctest

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFreeRange(t *testing.T) {
	base, err := FreeRange(5)
	require.NoError(t, err)
	for p := base; p < base+5; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "port %d", p)
		require.NoError(t, ln.Close())
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"", 3, ""},
		{"a\nb\n", 1, ""},
	} {
		require.Equal(t, tc.want, Tail(tc.in, tc.n), "%q %d", tc.in, tc.n)
	}
}

func TestBuildUnknown(t *testing.T) {
	require.ErrorContains(t, Build(t.TempDir(), "no-such-daemon"), `no daemon "no-such-daemon"`)
}
