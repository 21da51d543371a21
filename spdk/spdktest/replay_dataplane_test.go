package spdktest_test

import (
	"bytes"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/dataplane"
	"github.com/virtual-disk-array/vda/dataplane/dataplanetest"
)

// startDataPlane runs a real data plane (real NVMe/TCP listeners, real
// NVMe/TCP attaches with attachIOQueues I/O queues) on a temporary socket
// until the test ends.
func startDataPlane(t *testing.T, attachIOQueues int) string {
	t.Helper()
	return dataplanetest.Start(t, dataplane.Config{AttachIOQueues: attachIOQueues}).Socket
}

// dataPlaneDivergences are the cases whose answers the real data planes
// do not give yet, with why: none. (They were the controllers and queue
// pairs of nvmf_subsystem_get_controllers and _get_qpairs, which live in
// nvmetcp/target and now reach the model through its Controllers hook;
// CNTLIDs, now per subsystem; and ANA reporting, now only for subsystems
// created with ana_reporting.)
var dataPlaneDivergences = map[string]string{}

// initiatorIOQueues is the number of I/O queues the initiator data plane's
// attaches open (dataplane.Config.AttachIOQueues).
const initiatorIOQueues = 1

// ioQueueCases are the target-side cases that count or list the queues of
// the initiator's controllers. SPDK's initiator opens its I/O qpair when a
// thread first does I/O to the controller and closes it when no bdev
// channel is left, so the reference, taken at rest, counts and lists only
// the admin queues; the Go initiator keeps its I/O queues from connect.
// The answers are compared without them: num_io_qpairs less
// initiatorIOQueues, and the qpairs of QID > 0 left out of
// nvmf_subsystem_get_qpairs, after checking that each controller has
// exactly initiatorIOQueues of them, enabled, through the listener of its
// admin queue.
var ioQueueCases = map[string]bool{
	"tgt_get_controllers_connected":      true,
	"tgt_get_qpairs_connected":           true,
	"tgt_get_controllers_r2":             true,
	"tgt_get_controllers_after_disallow": true,
}

// withoutIOQueues takes the initiator's I/O queues out of the answer of
// an ioQueueCases case (see there).
func withoutIOQueues(t *testing.T, got []byte) []byte {
	t.Helper()
	var ans struct {
		Jsonrpc string            `json:"jsonrpc"`
		ID      json.RawMessage   `json:"id"`
		Result  []json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(got, &ans), "%s", got)
	type entry struct {
		Cntlid        int             `json:"cntlid"`
		QID           *int            `json:"qid"`
		State         string          `json:"state"`
		NumIOQpairs   *int            `json:"num_io_qpairs"`
		ListenAddress json.RawMessage `json:"listen_address"`
	}
	ioq := map[int]int{}
	admin := map[int]string{}
	var kept []json.RawMessage
	for _, r := range ans.Result {
		var e entry
		require.NoError(t, json.Unmarshal(r, &e))
		switch {
		case e.NumIOQpairs != nil: // a controller
			require.Greater(t, *e.NumIOQpairs, initiatorIOQueues, "%s", r)
			r = regexp.MustCompile(`"num_io_qpairs":\d+`).ReplaceAll(r,
				[]byte(`"num_io_qpairs":`+strconv.Itoa(*e.NumIOQpairs-initiatorIOQueues)))
		case e.QID != nil && *e.QID > 0: // an I/O queue pair
			require.Equal(t, "enabled", e.State, "%s", r)
			ioq[e.Cntlid]++
			require.Equal(t, admin[e.Cntlid], string(e.ListenAddress), "I/O queue of controller %d", e.Cntlid)
			continue
		case e.QID != nil:
			admin[e.Cntlid] = string(e.ListenAddress)
		}
		kept = append(kept, r)
	}
	for id := range admin {
		require.Equal(t, initiatorIOQueues, ioq[id], "I/O queues of controller %d", id)
	}
	ans.Result = kept
	if ans.Result == nil {
		ans.Result = []json.RawMessage{}
	}
	out, err := json.Marshal(ans)
	require.NoError(t, err)
	return out
}

// refPorts are the TCP ports the reference's requests name.
var refPorts = regexp.MustCompile(`"trsvcid": *"(45[0-9][0-9])"`)

// TestReplayDataPlane replays the reference against two real data planes:
// the storage cases to one, the initiator cases to the other, whose
// bdev_nvme_attach_controller connects over NVMe/TCP to the first one's
// listeners. The answers must match as in TestReplayReference.
//
// The reference listens on fixed ports (4520...4599); each is rewritten
// to a port of 127.0.0.1 that was free when the test started, in requests
// and back in answers, so that the test does not collide with anything
// (another test, a real SPDK) holding those ports. A port freed by the
// free-port probe could still be taken by another process before the
// storage data plane listens on it: that race is the only collision risk.
func TestReplayDataPlane(t *testing.T) {
	cases := loadCases(t)
	require.Len(t, cases, 392)

	files := aioFiles(t)
	// Every reference port, and a free one in its place.
	ports := map[string]string{}
	for _, c := range cases {
		for _, s := range []string{string(c.Request), string(c.Response), ptrStr(c.RequestRaw)} {
			for _, m := range refPorts.FindAllStringSubmatch(s, -1) {
				if _, ok := ports[m[1]]; !ok {
					ports[m[1]] = freeTCPPort(t)
				}
			}
		}
	}
	portRe := func(p string) *regexp.Regexp { return regexp.MustCompile(`("trsvcid": *)"` + p + `"`) }
	fwd, rev := map[string]*regexp.Regexp{}, map[string]*regexp.Regexp{}
	for ref, free := range ports {
		fwd[ref], rev[free] = portRe(ref), portRe(free)
	}

	storage, initiator := startDataPlane(t, 0), startDataPlane(t, initiatorIOQueues)
	storageConn := dialRaw(t, storage)
	initiatorConn := dialRaw(t, initiator)

	ids := newIDMap()
	exact, shaped, diverged := 0, []string{}, []string{}
	for _, c := range cases {
		t.Run(c.Case, func(t *testing.T) {
			rewrite := func(s string) string {
				for ph, path := range files {
					s = strings.ReplaceAll(s, ph, path)
				}
				for ref, re := range fwd {
					s = re.ReplaceAllString(s, `${1}"`+ports[ref]+`"`)
				}
				return ids.rewrite(s)
			}
			unrewrite := func(b []byte) []byte {
				for ph, path := range files {
					b = bytes.ReplaceAll(b, []byte(path), []byte(ph))
				}
				for ref, free := range ports {
					b = rev[free].ReplaceAll(b, []byte(`${1}"`+ref+`"`))
				}
				return b
			}
			var got []byte
			if c.RequestRaw != nil {
				got = unrewrite(sendRaw(t, storage, rewrite(*c.RequestRaw), c.Response))
			} else {
				conn := storageConn
				if initiatorCase(c) {
					conn = initiatorConn
				}
				got = unrewrite(conn.call(t, rewrite(string(c.Request))))
			}
			if ioQueueCases[c.Case] {
				got = withoutIOQueues(t, got)
			}
			used, err := compareJSON(c.Case, c.Response, got, ids)
			if why, known := dataPlaneDivergences[c.Case]; known && err != nil {
				t.Logf("known divergence (%s): %v", why, err)
				diverged = append(diverged, c.Case)
				return
			}
			require.NoError(t, err, "case %s (%s)\nwant %s\ngot  %s", c.Case, c.Note, c.Response, got)
			if used {
				shaped = append(shaped, c.Case)
			} else {
				exact++
			}
		})
	}
	t.Logf("replay on data planes: %d of %d cases match exactly, %d match with shape-only exceptions %v, "+
		"%d known divergences %v, %d fail", exact, len(cases), len(shaped), shaped, len(diverged), diverged,
		len(cases)-exact-len(shaped)-len(diverged))
}

func ptrStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// freeTCPPort returns a port of 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
