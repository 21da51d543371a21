package spdktest_test

// The replay: every case of testdata/rpc-reference.jsonl (392 real
// request/response pairs captured from SPDK v26.05) is sent, in order, as
// the exact bytes SPDK received, over a real Unix socket to the fake, and
// the answer is compared with SPDK's: result or error code and message,
// the id, key order and every value.
//
// SPDK generated uuids differ on every run, so uuids are compared by
// identity, not text: the first time a reference uuid meets a model uuid at
// the same place they are paired, and from then on each must always meet
// the other (nguids, the upper-case hex form, go through the same pairing;
// so do uuids inside strings, such as a uuid-based host NQN). Later
// requests that name a reference uuid are rewritten to the paired one.
//
// The reference ran on two processes: a storage target, and an initiator
// node that ran bdev_nvme_* against it over 127.0.0.1. The replay routes
// those cases to a second Target on the same model.Fabric.
//
// Exceptions: values compared by shape (same JSON type) only, because no
// model can reproduce them.
//
//	case                      | values                            | why
//	--------------------------|-----------------------------------|------------------------------------------
//	iostat_all, iostat_names  | ticks; every counter of bdevs[]   | time stamps, and the reads SPDK's examine
//	                          |                                   | did with their measured latencies
//	iostat_per_channel        | ticks                             | time stamp
//	tgt_get_qpairs_connected  | peer_address.trsvcid              | the initiator's ephemeral TCP port

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk/model"
	"github.com/virtual-disk-array/vda/spdk/spdktest"
)

// shapeOnly reports whether a value of a case is compared by shape only
// (see the table above). path is like "result.bdevs[2].bytes_read".
func shapeOnly(caseID, path string) bool {
	switch caseID {
	case "iostat_all", "iostat_names":
		return path == "result.ticks" || strings.HasPrefix(path, "result.bdevs[")
	case "iostat_per_channel":
		return path == "result.ticks"
	case "tgt_get_qpairs_connected":
		return strings.HasSuffix(path, ".peer_address.trsvcid")
	}
	return false
}

// initiatorCase reports whether a case ran on the initiator node.
func initiatorCase(c refCase) bool {
	if m, ok := c.Method.(string); ok && strings.HasPrefix(m, "bdev_nvme_") {
		return true
	}
	switch c.Case {
	case "get_bdevs_nvme_ns", "get_bdevs_all_initiator", "get_bdevs_after_detach",
		"get_bdevs_nvme_after_subsys_delete",
		"unknown_field_nvmf_create_transport_fresh", "nvmf_create_transport_rdma_not_built",
		"nvmf_get_transports_b":
		return true
	}
	return false
}

// aioFiles maps the placeholders by which the aio cases name their files
// to files in a temporary directory: two 64 MiB files and a missing one.
func aioFiles(t *testing.T) map[string]string {
	dir := t.TempDir()
	files := map[string]string{
		"<aio-file>":     filepath.Join(dir, "aio-a"),
		"<aio-file-2>":   filepath.Join(dir, "aio-b"),
		"<missing-file>": filepath.Join(dir, "missing"),
	}
	for _, ph := range []string{"<aio-file>", "<aio-file-2>"} {
		require.NoError(t, os.WriteFile(files[ph], nil, 0o600))
		require.NoError(t, os.Truncate(files[ph], 64<<20))
	}
	return files
}

type refCase struct {
	Case       string          `json:"case"`
	Method     any             `json:"method"`
	Request    json.RawMessage `json:"request"`
	RequestRaw *string         `json:"request_raw"`
	Response   json.RawMessage `json:"response"`
	Note       string          `json:"note"`
}

func loadCases(t *testing.T) []refCase {
	data, err := os.ReadFile("testdata/rpc-reference.jsonl")
	require.NoError(t, err)
	var cases []refCase
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var c refCase
		require.NoError(t, json.Unmarshal(line, &c))
		cases = append(cases, c)
	}
	return cases
}

func TestReplayReference(t *testing.T) {
	cases := loadCases(t)
	require.Len(t, cases, 392)

	files := aioFiles(t)

	servers := spdktest.StartFabric(t, model.Config{}, model.Config{})
	storage, initiator := servers[0], servers[1]
	storageConn := dialRaw(t, storage.Path)
	initiatorConn := dialRaw(t, initiator.Path)

	ids := newIDMap()
	exact, shaped := 0, []string{}
	for _, c := range cases {
		t.Run(c.Case, func(t *testing.T) {
			rewrite := func(s string) string {
				for ph, path := range files {
					s = strings.ReplaceAll(s, ph, path)
				}
				return ids.rewrite(s)
			}
			unrewrite := func(b []byte) []byte {
				for ph, path := range files {
					b = bytes.ReplaceAll(b, []byte(path), []byte(ph))
				}
				return b
			}
			var got []byte
			if c.RequestRaw != nil {
				got = unrewrite(sendRaw(t, storage.Path, rewrite(*c.RequestRaw), c.Response))
			} else {
				conn := storageConn
				if initiatorCase(c) {
					conn = initiatorConn
				}
				got = unrewrite(conn.call(t, rewrite(string(c.Request))))
			}
			used, err := compareJSON(c.Case, c.Response, got, ids)
			require.NoError(t, err, "case %s (%s)\nwant %s\ngot  %s", c.Case, c.Note, c.Response, got)
			if used {
				shaped = append(shaped, c.Case)
			} else {
				exact++
			}
		})
	}
	t.Logf("replay: %d of %d cases match exactly, %d match with shape-only exceptions %v, %d fail",
		exact, len(cases), len(shaped), shaped, len(cases)-exact-len(shaped))
}

// rawConn is a persistent connection that sends one request and reads
// one answer at a time.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, path string) *rawConn {
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) call(t *testing.T, req string) []byte {
	require.NoError(t, rc.c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(rc.c, req)
	require.NoError(t, err)
	line, err := rc.r.ReadBytes('\n')
	require.NoError(t, err)
	return bytes.TrimSpace(line)
}

// sendRaw writes raw bytes on a new connection and collects the answers the
// reference says come back: none (then it checks for silence, or for the
// connection being closed after malformed JSON), one, or a list in arrival
// order (returned as a JSON array).
func sendRaw(t *testing.T, path, raw string, want json.RawMessage) []byte {
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	r := bufio.NewReader(c)
	if bytes.Equal(want, []byte("null")) {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
		line, err := r.ReadBytes('\n')
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return []byte("null") // silence: the connection stays open
		case errors.Is(err, io.EOF) && len(line) == 0:
			return []byte("null") // closed without an answer
		}
		return bytes.TrimSpace(line)
	}
	n := 1
	list := false
	var items []json.RawMessage
	if json.Unmarshal(want, &items) == nil && !strings.HasPrefix(raw, "[") {
		n, list = len(items), true // pipelined: several answers
	}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	var got [][]byte
	for range n {
		line, err := r.ReadBytes('\n')
		require.NoError(t, err)
		got = append(got, bytes.TrimSpace(line))
	}
	if !list {
		return got[0]
	}
	return append(append([]byte("["), bytes.Join(got, []byte(","))...), ']')
}

// idMap pairs reference uuids with model uuids.
type idMap struct {
	fwd map[string]string // reference → model
	rev map[string]string
}

func newIDMap() *idMap { return &idMap{fwd: map[string]string{}, rev: map[string]string{}} }

var (
	uuidRE  = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	nguidRE = regexp.MustCompile(`^[0-9A-F]{32}$`)
)

// pair records (or checks) that ref and got are the same identity.
func (m *idMap) pair(ref, got string) bool {
	ref, got = strings.ToLower(ref), strings.ToLower(got)
	if a, ok := m.fwd[ref]; ok {
		return a == got
	}
	if _, ok := m.rev[got]; ok {
		return false
	}
	m.fwd[ref], m.rev[got] = got, ref
	return true
}

// rewrite replaces the reference uuids (and nguids) known so far in a
// request by their model counterparts.
func (m *idMap) rewrite(s string) string {
	s = uuidRE.ReplaceAllStringFunc(s, func(u string) string {
		if a, ok := m.fwd[strings.ToLower(u)]; ok {
			return a
		}
		return u
	})
	return regexp.MustCompile(`"[0-9A-F]{32}"`).ReplaceAllStringFunc(s, func(q string) string {
		u := nguidToUUID(q[1:33])
		if a, ok := m.fwd[u]; ok {
			return `"` + strings.ToUpper(strings.ReplaceAll(a, "-", "")) + `"`
		}
		return q
	})
}

func nguidToUUID(n string) string {
	n = strings.ToLower(n)
	return n[0:8] + "-" + n[8:12] + "-" + n[12:16] + "-" + n[16:20] + "-" + n[20:32]
}

// compareJSON compares an answer with the reference's, value by value in
// key order. It reports whether a shape-only exception was used.
func compareJSON(caseID string, want, got []byte, ids *idMap) (bool, error) {
	w, err := parseOrdered(want)
	if err != nil {
		return false, fmt.Errorf("reference: %w", err)
	}
	g, err := parseOrdered(got)
	if err != nil {
		return false, fmt.Errorf("answer %q: %w", got, err)
	}
	cmp := &comparer{caseID: caseID, ids: ids}
	err = cmp.value("", w, g)
	return cmp.shaped, err
}

type comparer struct {
	caseID string
	ids    *idMap
	shaped bool
}

func (c *comparer) value(path string, w, g ovalue) error {
	if w.kind != g.kind {
		return fmt.Errorf("%s: want %s, got %s", path, w, g)
	}
	if w.kind != '{' && w.kind != '[' && shapeOnly(c.caseID, strings.TrimPrefix(path, ".")) {
		c.shaped = true
		return nil
	}
	switch w.kind {
	case '{':
		if len(w.obj) != len(g.obj) {
			return fmt.Errorf("%s: want keys %v, got %v", path, w.keys(), g.keys())
		}
		for i := range w.obj {
			if w.obj[i].key != g.obj[i].key {
				return fmt.Errorf("%s: want keys %v, got %v", path, w.keys(), g.keys())
			}
			if err := c.value(path+"."+w.obj[i].key, w.obj[i].val, g.obj[i].val); err != nil {
				return err
			}
		}
	case '[':
		if len(w.arr) != len(g.arr) {
			return fmt.Errorf("%s: want %d elements, got %d: %s", path, len(w.arr), len(g.arr), g)
		}
		for i := range w.arr {
			if err := c.value(fmt.Sprintf("%s[%d]", path, i), w.arr[i], g.arr[i]); err != nil {
				return err
			}
		}
	case '"':
		if !c.sameString(w.str, g.str) {
			return fmt.Errorf("%s: want %q, got %q", path, w.str, g.str)
		}
	default:
		if w.str != g.str {
			return fmt.Errorf("%s: want %s, got %s", path, w.str, g.str)
		}
	}
	return nil
}

// sameString compares strings with the uuids in them paired by identity.
func (c *comparer) sameString(w, g string) bool {
	if nguidRE.MatchString(w) && nguidRE.MatchString(g) {
		return c.ids.pair(nguidToUUID(w), nguidToUUID(g))
	}
	wu, gu := uuidRE.FindAllString(w, -1), uuidRE.FindAllString(g, -1)
	if len(wu) != len(gu) || uuidRE.ReplaceAllString(w, "<uuid>") != uuidRE.ReplaceAllString(g, "<uuid>") {
		return false
	}
	for i := range wu {
		if !c.ids.pair(wu[i], gu[i]) {
			return false
		}
	}
	return true
}

// ovalue is a JSON value that keeps its object keys in order.
type ovalue struct {
	kind byte // '{', '[', '"', 'n' (number), 'b' (bool), '0' (null)
	obj  []okv
	arr  []ovalue
	str  string // string, number text, or bool text
}

type okv struct {
	key string
	val ovalue
}

func (v ovalue) keys() []string {
	var ks []string
	for _, kv := range v.obj {
		ks = append(ks, kv.key)
	}
	return ks
}

func (v ovalue) String() string {
	switch v.kind {
	case '{':
		return fmt.Sprintf("object%v", v.keys())
	case '[':
		return fmt.Sprintf("array(%d)", len(v.arr))
	case '"':
		return fmt.Sprintf("%q", v.str)
	case '0':
		return "null"
	}
	return v.str
}

func parseOrdered(data []byte) (ovalue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	if err != nil {
		return v, err
	}
	if dec.More() {
		return v, errors.New("trailing data")
	}
	return v, nil
}

func decodeOrdered(dec *json.Decoder) (ovalue, error) {
	tok, err := dec.Token()
	if err != nil {
		return ovalue{}, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			v := ovalue{kind: '{'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return v, err
				}
				val, err := decodeOrdered(dec)
				if err != nil {
					return v, err
				}
				v.obj = append(v.obj, okv{key: kt.(string), val: val})
			}
			_, err := dec.Token()
			return v, err
		case '[':
			v := ovalue{kind: '['}
			for dec.More() {
				val, err := decodeOrdered(dec)
				if err != nil {
					return v, err
				}
				v.arr = append(v.arr, val)
			}
			_, err := dec.Token()
			return v, err
		}
	case string:
		return ovalue{kind: '"', str: tok}, nil
	case json.Number:
		return ovalue{kind: 'n', str: tok.String()}, nil
	case bool:
		return ovalue{kind: 'b', str: fmt.Sprint(tok)}, nil
	case nil:
		return ovalue{kind: '0'}, nil
	}
	return ovalue{}, fmt.Errorf("unexpected token %v", tok)
}
