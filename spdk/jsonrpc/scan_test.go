package jsonrpc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestScan(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name   string
		in     string
		values int
		end    int
		err    error
	}{
		{name: "object", in: `{"a":1}`, values: 4, end: 7},
		{name: "empty object", in: `{}`, values: 2, end: 2},
		{name: "empty array", in: `[]`, values: 2, end: 2},
		{name: "nested", in: `{"a":[1,true,null,{"b":"c"}]}`, values: 12, end: 29},
		{name: "trailing whitespace belongs to the value", in: "{} \n\t\r{}", values: 2, end: 6},
		{name: "leading whitespace", in: "  7 ", values: 1, end: 4},
		{name: "second value not read", in: `{"a":1}{"b":2}`, values: 4, end: 7},
		{name: "number at the end is complete", in: `123`, values: 1, end: 3},
		{name: "number stops at a non-number", in: `123abc`, values: 1, end: 3},
		{name: "leading zero stops the number", in: `01`, values: 1, end: 1},
		{name: "fraction and exponent", in: `-1.5e+10 `, values: 1, end: 9},
		{name: "uint64 max", in: `18446744073709551615`, values: 1, end: 20},
		{name: "string", in: `"a\"\\\/\b\f\n\r\t\u00e9"`, values: 1, end: 25},
		{name: "surrogate pair", in: `"\uD83D\uDE00"`, values: 1, end: 14},
		{name: "utf-8", in: "\"é€😀\"", values: 1, end: 11},
		{name: "literals", in: `[true,false,null]`, values: 5, end: 17},
		{name: "depth 64", in: deep(64), values: 128, end: 128},

		{name: "empty", in: ``, err: errIncomplete},
		{name: "whitespace only", in: " \n", err: errIncomplete},
		{name: "open object", in: `{"jsonrpc":"2.0",`, err: errIncomplete},
		{name: "open string", in: `"abc`, err: errIncomplete},
		{name: "lone quote", in: `"`, err: errIncomplete},
		{name: "half an escape", in: `"\`, err: errIncomplete},
		{name: "half a unicode escape", in: `"\u00`, err: errIncomplete},
		{name: "high surrogate at the end", in: `"\uD83D`, err: errIncomplete},
		{name: "half a utf-8 sequence", in: "\"\xe2\x82", err: errIncomplete},
		{name: "minus alone", in: `-`, err: errIncomplete},
		{name: "dot at the end", in: `1.`, err: errIncomplete},
		{name: "exponent at the end", in: `1e`, err: errIncomplete},
		{name: "exponent sign at the end", in: `1e+`, err: errIncomplete},
		{name: "half a literal", in: `tru`, err: errIncomplete},

		{name: "garbage", in: `hello world`, err: errInvalid},
		{name: "trailing comma in object", in: `{"a":7,}`, err: errInvalid},
		{name: "trailing comma in array", in: `[1,]`, err: errInvalid},
		{name: "missing colon", in: `{"a" 1}`, err: errInvalid},
		{name: "missing value", in: `{"a":}`, err: errInvalid},
		{name: "mismatched close", in: `[}`, err: errInvalid},
		{name: "close at top", in: `]`, err: errInvalid},
		{name: "bad literal", in: `trux`, err: errInvalid},
		{name: "leading zero in array", in: `[01]`, err: errInvalid},
		{name: "dot without digits", in: `1.x`, err: errInvalid},
		{name: "plus sign", in: `+1`, err: errInvalid},
		{name: "comment", in: `/* c */ {}`, err: errInvalid},
		{name: "single quotes", in: `'a'`, err: errInvalid},
		{name: "raw control character", in: "\"a\x01\"", err: errInvalid},
		{name: "bad escape", in: `"\x"`, err: errInvalid},
		{name: "bad hex", in: `"\u00g0"`, err: errInvalid},
		{name: "lone low surrogate", in: `"\uDE00"`, err: errInvalid},
		{name: "high surrogate without low", in: `"\uD83Dx"`, err: errInvalid},
		{name: "high surrogate then non-low", in: `"\uD83D\u0041"`, err: errInvalid},
		{name: "invalid utf-8", in: "\"\xff\"  ", err: errInvalid},
		// SPDK wants as many bytes as the lead byte promises before it
		// judges them, even for a lead byte that promises nothing valid.
		{name: "invalid utf-8 near the end waits", in: "\"\xff\"", err: errIncomplete},
		{name: "overlong utf-8", in: "\"\xc0\xaf\"", err: errInvalid},
		{name: "utf-8 surrogate", in: "\"\xed\xa0\x80\"", err: errInvalid},
		{name: "nbsp is not whitespace", in: "\u00a0{}", err: errInvalid},
		{name: "depth 65", in: deep(65), err: errDepthExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			values, end, err := scan([]byte(tt.in))
			assert.ErrorIs(t, err, tt.err)
			assert.Equal(t, tt.values, values, "values")
			assert.Equal(t, tt.end, end, "end")
		})
	}
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"plain/slash", `"plain/slash"`},
		{"q\"b\\", `"q\"b\\"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x1f\x7f", `"\u0000\u001F\u007F"`},
		{"<&>", `"<&>"`},
		{"é€", `"\u00E9\u20AC"`},
		{"😀", `"\uD83D\uDE00"`},
		{"bad\xff", `"bad\uFFFD"`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, string(appendString(nil, tt.in)), "%q", tt.in)
	}
}
