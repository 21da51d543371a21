package guest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/internal/guest"
)

// kernel finds the guest kernel, or skips: unless VDA_TEST_GUEST=1 (CI),
// which makes a missing kernel a failure.
func kernel(t *testing.T) *guest.Kernel {
	k, err := guest.Find("")
	if errors.Is(err, guest.ErrUnavailable) && os.Getenv("VDA_TEST_GUEST") != "1" {
		t.Skipf("%v (VDA_TEST_GUEST=1 makes this a failure)", err)
	}
	require.NoError(t, err)
	return k
}

// TestBoot boots the guest with the NVMe/TCP initiator: the script runs,
// its output and exit status come back, /dev/nvme-fabrics exists, and the
// host's loopback answers at 10.0.2.2.
func TestBoot(t *testing.T) {
	k := kernel(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	// A dynamically linked host binary runs in the guest with its
	// libraries (nvme-cli, when installed: CI installs it).
	var bins []string
	if _, err := os.Stat("/usr/sbin/nvme"); err == nil || os.Getenv("VDA_TEST_GUEST") == "1" {
		bins = append(bins, "/usr/sbin/nvme")
	}
	var streamed []string // the console, line by line, as it came
	res, err := k.Boot(context.Background(), guest.Run{
		Modules: []string{"nvme-tcp"},
		Script: fmt.Sprintf(`uname -r
test -c /dev/nvme-fabrics && echo fabrics-ok
cat /data/hello.txt
[ -x /usr/sbin/nvme ] && /usr/sbin/nvme version
echo from-guest | nc %s %d
exit 3`, guest.HostAddr, port),
		Files:    map[string][]byte{"/data/hello.txt": []byte("hello file\n")},
		Binaries: bins,
		Output:   guest.Lines(func(line string) { streamed = append(streamed, line) }),
	})
	require.NoError(t, err)
	assert.Equal(t, 3, res.Status, res.Console)
	if len(bins) > 0 {
		assert.Contains(t, res.Output, "nvme version", "a host binary runs with its libraries")
	}
	assert.Contains(t, res.Output, k.Version)
	assert.Contains(t, res.Output, "fabrics-ok")
	assert.Contains(t, streamed, "fabrics-ok", "the console streamed to Run.Output")
	assert.Contains(t, res.Output, "hello file")
	select {
	case line := <-got:
		assert.Equal(t, "from-guest\n", line)
	case <-time.After(5 * time.Second):
		t.Fatal("the host never heard from the guest")
	}
}

// TestLines hands over whole lines without their carriage returns, however
// the console's output is cut.
func TestLines(t *testing.T) {
	var got []string
	w := guest.Lines(func(line string) { got = append(got, line) })
	for _, chunk := range []string{"one\r", "\ntw", "o\r\n\r\nthr", "ee"} {
		n, err := w.Write([]byte(chunk))
		require.NoError(t, err)
		assert.Equal(t, len(chunk), n)
	}
	assert.Equal(t, []string{"one", "two", ""}, got, "a line without its newline waits")
}

// TestBootRetriesAHang kills a guest whose script has not started within
// BootTimeout and boots it again, and gives up after the last attempt with
// the console in the error.
func TestBootRetriesAHang(t *testing.T) {
	k := kernel(t)
	var streamed []string
	_, err := k.Boot(context.Background(), guest.Run{
		Script:      "exit 0",
		BootTimeout: 200 * time.Millisecond,
		Output:      guest.Lines(func(line string) { streamed = append(streamed, line) }),
	})
	require.Error(t, err, "no guest boots in 200ms")
	assert.Contains(t, err.Error(), "guest did not report")
	assert.Contains(t, streamed, "[guest: no script after 200ms, boot attempt 1 of 3 failed; retrying]")
	assert.Contains(t, streamed, "[guest: no script after 200ms, boot attempt 2 of 3 failed; retrying]")
}
