package jsonrpc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/spdk"
)

// refCase is one line of testdata/proto.jsonl: the protocol cases of
// shared/spdk/rpc-reference.jsonl (method null or a list, or a case id
// starting with "proto"), plus cleanup_notif, which deletes the bdev that
// proto_notification_no_id created, as it did between them in the capture.
type refCase struct {
	Case       string          `json:"case"`
	Method     json.RawMessage `json:"method"`
	Request    json.RawMessage `json:"request"`
	RequestRaw *string         `json:"request_raw"`
	Response   json.RawMessage `json:"response"`
	Note       string          `json:"note"`
}

func loadCases(t *testing.T) []refCase {
	t.Helper()
	f, err := os.Open("testdata/proto.jsonl")
	require.NoError(t, err)
	defer f.Close()
	var cases []refCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c refCase
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		cases = append(cases, c)
	}
	require.NoError(t, sc.Err())
	return cases
}

func compact(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, raw))
	return b.String()
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// TestReplayProtocolCases sends each case's exact bytes over a real Unix
// socket, on a connection of its own as the capture did, and compares the
// answers byte for byte with the reference (compacted: SPDK answers compact
// JSON), in arrival order. A case the reference answers with silence must
// stay silent and keep the connection open (checked with a probe request,
// whose answer must come next); a case whose bytes are not one JSON value
// and got no answer must see the connection closed without a byte, and the
// server must log SPDK's "jsonrpc parse request failed".
func TestReplayProtocolCases(t *testing.T) {
	cases := loadCases(t)
	h := newRefHandler(t, cases)
	srv := startServer(t, h)

	for _, c := range cases {
		t.Run(c.Case, func(t *testing.T) {
			if c.Case == "proto_pipelined_three_sync" {
				// Mal1 comes from earlier, non-protocol cases of the capture.
				h.create("Mal1")
			}
			send := ""
			if c.RequestRaw != nil {
				send = *c.RequestRaw
			} else {
				send = compact(t, c.Request)
			}
			cl := dial(t, srv.path)
			cl.send(send)

			switch {
			case isNull(c.Response) && isNull(c.Request):
				// Not one JSON value, and no answer: malformed.
				cl.closed()
				assert.Contains(t, srv.logs.String(), "jsonrpc parse request failed")
				return
			case isNull(c.Response):
				cl.silent(100 * time.Millisecond)
			case isNull(c.Request) && c.Response[0] == '[':
				// Pipelined requests: the answers in arrival order.
				var want []json.RawMessage
				require.NoError(t, json.Unmarshal(c.Response, &want))
				for _, w := range want {
					assert.Equal(t, compact(t, w)+"\n", cl.line())
				}
			default:
				assert.Equal(t, compact(t, c.Response)+"\n", cl.line())
			}
			cl.probe()
		})
	}
}

// refHandler answers the handful of methods the protocol cases call, with
// the objects the reference recorded and SPDK's error codes and messages.
type refHandler struct {
	version    json.RawMessage
	transports json.RawMessage
	objects    map[string]json.RawMessage // bdev objects by name

	mu    sync.Mutex
	bdevs []string // created, in order
}

func newRefHandler(t *testing.T, cases []refCase) *refHandler {
	h := &refHandler{objects: map[string]json.RawMessage{}}
	type answer struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	for _, c := range cases {
		var answers []answer
		if len(c.Response) > 0 && c.Response[0] == '[' {
			require.NoError(t, json.Unmarshal(c.Response, &answers))
		} else if !isNull(c.Response) {
			var a answer
			require.NoError(t, json.Unmarshal(c.Response, &a))
			answers = []answer{a}
		}
		for _, a := range answers {
			var bdevs []struct {
				Name string `json:"name"`
			}
			var fields struct {
				Version string `json:"version"`
			}
			var transports []struct {
				TrType string `json:"trtype"`
			}
			switch {
			case json.Unmarshal(a.Result, &fields) == nil && fields.Version != "":
				h.version = a.Result
			case json.Unmarshal(a.Result, &transports) == nil && len(transports) > 0 && transports[0].TrType != "":
				h.transports = a.Result
			case json.Unmarshal(a.Result, &bdevs) == nil && len(bdevs) == 1 && bdevs[0].Name != "":
				var objs []json.RawMessage
				require.NoError(t, json.Unmarshal(a.Result, &objs))
				h.objects[bdevs[0].Name] = objs[0]
			}
		}
	}
	require.NotNil(t, h.version)
	require.NotNil(t, h.transports)
	require.Contains(t, h.objects, "NotifMal")
	require.Contains(t, h.objects, "Mal1")
	return h
}

func (h *refHandler) create(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bdevs = append(h.bdevs, name)
}

// Async: bdev_get_bdevs waits for examine, so SPDK answers it on a later
// poll.
func (h *refHandler) Async(method string) bool { return method == "bdev_get_bdevs" }

var errDecode = func(m string) error { return spdk.NewError(m, -32603, "spdk_json_decode_object failed") }

// decode decodes params strictly, as SPDK's bdev module does.
func decode(method string, params json.RawMessage, v any) error {
	if params == nil {
		params = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errDecode(method)
	}
	return nil
}

func (h *refHandler) Handle(ctx context.Context, method string, params json.RawMessage) (any, error) {
	switch method {
	case "probe":
		return "probe", nil
	case "spdk_get_version", "framework_wait_init":
		if params != nil {
			return nil, spdk.NewError(method, -32602, method+" method requires no parameters")
		}
		if method == "framework_wait_init" {
			return true, nil
		}
		return h.version, nil
	case "bdev_get_bdevs":
		var p struct {
			Name    *string `json:"name"`
			Timeout *int    `json:"timeout"`
		}
		if err := decode(method, params, &p); err != nil {
			return nil, err
		}
		h.mu.Lock()
		bdevs := slices.Clone(h.bdevs)
		h.mu.Unlock()
		if p.Name == nil {
			list := []json.RawMessage{}
			for _, b := range bdevs {
				list = append(list, h.objects[b])
			}
			return list, nil
		}
		if slices.Contains(bdevs, *p.Name) {
			return []json.RawMessage{h.objects[*p.Name]}, nil
		}
		if p.Timeout != nil && *p.Timeout > 0 {
			select {
			case <-time.After(time.Duration(*p.Timeout) * time.Millisecond):
				return nil, spdk.NewError(method, -110, "Connection timed out")
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return nil, spdk.NewError(method, -19, "No such device")
	case "bdev_malloc_create":
		var p struct {
			Name      string  `json:"name"`
			NumBlocks *uint64 `json:"num_blocks"`
			BlockSize *uint32 `json:"block_size"`
		}
		if err := decode(method, params, &p); err != nil || p.NumBlocks == nil || p.BlockSize == nil {
			return nil, errDecode(method)
		}
		h.create(p.Name)
		return p.Name, nil
	case "bdev_malloc_delete":
		var p struct {
			Name *string `json:"name"`
		}
		if err := decode(method, params, &p); err != nil || p.Name == nil {
			return nil, errDecode(method)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		i := slices.Index(h.bdevs, *p.Name)
		if i < 0 {
			return nil, spdk.NewError(method, -19, "No such device")
		}
		h.bdevs = slices.Delete(h.bdevs, i, i+1)
		return true, nil
	case "bdev_lvol_get_lvstores":
		return []any{}, nil
	case "nvmf_get_transports":
		return h.transports, nil
	}
	return nil, spdk.ErrMethodNotFound
}
