package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/virtual-disk-array/vda/spdk"
)

// Responses are written the way SPDK's JSON writer writes them: compact,
// members in SPDK's order ("jsonrpc", "id", then "result" or "error"), and
// strings escaped by SPDK's rules (see appendString), so that a client sees
// the same bytes from this server as from SPDK.

var nullID = []byte("null")

// appendResult appends {"jsonrpc":"2.0","id":ID,"result":RESULT}.
func appendResult(dst, id, result []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"result":`...)
	dst = append(dst, result...)
	return append(dst, '}')
}

// appendError appends {"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M}}.
func appendError(dst, id []byte, code int, message string) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, message)
	return append(dst, "}}"...)
}

// invalidRequest is SPDK's answer to a request it cannot read.
func invalidRequest(id []byte) []byte {
	return appendError(nil, id, spdk.ErrInvalidRequest.Code, spdk.ErrInvalidRequest.Message)
}

// errorObject returns the code and message to send for a handler's error: a
// *spdk.Error as it is, anything else as -32603 with its text.
func errorObject(err error) (int, string) {
	var e *spdk.Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	return spdk.ErrInternal.Code, err.Error()
}

// marshalResult encodes a handler's result as compact JSON with SPDK's
// string escaping.
func marshalResult(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return respell(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// respell rewrites every string of a compact JSON text, as encoding/json
// writes it, with SPDK's escaping.
func respell(src []byte) ([]byte, error) {
	if bytes.IndexByte(src, '"') < 0 {
		return src, nil
	}
	dst := make([]byte, 0, len(src)+len(src)/8)
	for i := 0; i < len(src); {
		if src[i] != '"' {
			dst = append(dst, src[i])
			i++
			continue
		}
		j := i + 1
		for src[j] != '"' {
			if src[j] == '\\' {
				j++
			}
			j++
		}
		var s string
		if err := json.Unmarshal(src[i:j+1], &s); err != nil {
			return nil, err
		}
		dst = appendString(dst, s)
		i = j + 1
	}
	return dst, nil
}

// appendString appends s as a JSON string escaped the way SPDK's writer
// escapes it: the two-character escapes for \b \f \n \r \t " and \\,
// printable ASCII as it is (including /), and everything else as \uXXXX with
// upper-case hex (a surrogate pair above U+FFFF). Invalid UTF-8 becomes
// U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	u4 := func(dst []byte, v rune) []byte {
		return append(dst, '\\', 'u', hex[v>>12&0xF], hex[v>>8&0xF], hex[v>>4&0xF], hex[v&0xF])
	}
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '\b':
			dst = append(dst, '\\', 'b')
		case r == '\f':
			dst = append(dst, '\\', 'f')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r == '"':
			dst = append(dst, '\\', '"')
		case r == '\\':
			dst = append(dst, '\\', '\\')
		case r >= 0x20 && r < 0x7F:
			dst = append(dst, byte(r))
		case r < 0x10000:
			dst = u4(dst, r)
		default:
			r -= 0x10000
			dst = u4(dst, 0xD800+(r>>10))
			dst = u4(dst, 0xDC00+(r&0x3FF))
		}
	}
	return append(dst, '"')
}
