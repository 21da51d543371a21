package jsonrpc

import "errors"

// The scanner finds where one JSON value ends in a byte stream, and tells an
// incomplete value (wait for more bytes) from an invalid one (close the
// connection), with the rules of SPDK's parser (lib/json/json_parse.c):
//   - whitespace is only space, tab, CR and LF; comments are invalid;
//   - strings must be valid UTF-8 (no overlong forms, no surrogates), must
//     not hold raw control characters, and \u escapes must pair surrogates;
//   - a number that runs to the end of the buffer is complete ("123");
//   - nesting deeper than 64 is an error;
//   - the trailing whitespace after a value belongs to it.
//
// It counts the values the way SPDK does (each begin and end of an object or
// array, each name, each scalar), because SPDK refuses a request of more than
// 1024 values as a parse error.

const maxNestingDepth = 64

var (
	errIncomplete    = errors.New("incomplete JSON value")
	errInvalid       = errors.New("invalid JSON")
	errDepthExceeded = errors.New("JSON nesting too deep")
	errTooManyValues = errors.New("too many JSON values in one request")
)

type scanState int

const (
	stateValue          scanState = iota // a value may start
	stateValueSeparator                  // after a value inside a container
	stateName                            // an object member name may start
	stateNameSeparator                   // after a member name: the colon
	stateEnd                             // the top-level value is complete
)

// scan reads the first JSON value of data. It returns the number of values
// it holds and the offset just past it and its trailing whitespace; or
// errIncomplete when data ends first (also for empty or whitespace-only
// data); or errInvalid or errDepthExceeded.
func scan(data []byte) (values, end int, err error) {
	var (
		containers    [maxNestingDepth]byte // '{' or '['
		depth         int
		state         = stateValue
		trailingComma bool
		p             int
	)
	afterScalar := func() {
		if depth > 0 {
			state = stateValueSeparator
		} else {
			state = stateEnd
		}
		trailingComma = false
	}
	for p < len(data) && state != stateEnd {
		c := data[p]
		switch c {
		case ' ', '\t', '\r', '\n':
			p++
		case 't', 'f', 'n':
			if state != stateValue {
				return 0, 0, errInvalid
			}
			n, err := matchLiteral(data[p:])
			if err != nil {
				return 0, 0, err
			}
			values++
			p += n
			afterScalar()
		case '"':
			if state != stateValue && state != stateName {
				return 0, 0, errInvalid
			}
			n, err := scanString(data[p:])
			if err != nil {
				return 0, 0, err
			}
			values++
			p += n
			if state == stateName {
				state = stateNameSeparator
				trailingComma = false
			} else {
				afterScalar()
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if state != stateValue {
				return 0, 0, errInvalid
			}
			n, err := scanNumber(data[p:])
			if err != nil {
				return 0, 0, err
			}
			values++
			p += n
			afterScalar()
		case '{', '[':
			if state != stateValue {
				return 0, 0, errInvalid
			}
			if depth == maxNestingDepth {
				return 0, 0, errDepthExceeded
			}
			containers[depth] = c
			depth++
			if c == '{' {
				state = stateName
			} else {
				state = stateValue
			}
			values++
			p++
			trailingComma = false
		case '}', ']':
			if trailingComma || depth == 0 {
				return 0, 0, errInvalid
			}
			depth--
			open := containers[depth]
			if c == '}' && (open != '{' || (state != stateName && state != stateValueSeparator)) {
				return 0, 0, errInvalid
			}
			if c == ']' && (open != '[' || (state != stateValue && state != stateValueSeparator)) {
				return 0, 0, errInvalid
			}
			values++
			p++
			afterScalar()
		case ',':
			if state != stateValueSeparator {
				return 0, 0, errInvalid
			}
			p++
			if containers[depth-1] == '[' {
				state = stateValue
			} else {
				state = stateName
			}
			trailingComma = true
		case ':':
			if state != stateNameSeparator {
				return 0, 0, errInvalid
			}
			p++
			state = stateValue
		default:
			return 0, 0, errInvalid
		}
	}
	if state != stateEnd {
		return 0, 0, errIncomplete
	}
	for p < len(data) && isSpace(data[p]) {
		p++
	}
	return values, p, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// matchLiteral matches true, false or null at the start of data, whose first
// byte is t, f or n.
func matchLiteral(data []byte) (int, error) {
	var lit string
	switch data[0] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	if len(data) < len(lit) {
		return 0, errIncomplete
	}
	if string(data[:len(lit)]) != lit {
		return 0, errInvalid
	}
	return len(lit), nil
}

// scanNumber returns the length of the JSON number at the start of data. A
// number may stop anywhere a valid number could end, including the end of
// data; it is incomplete only where a digit must still follow ("-", "1.",
// "1e", "1e+").
func scanNumber(data []byte) (int, error) {
	p := 0
	digits := func() {
		for p < len(data) && isDigit(data[p]) {
			p++
		}
	}
	// mustDigit requires at least one digit at p.
	mustDigit := func() error {
		if p == len(data) {
			return errIncomplete
		}
		if !isDigit(data[p]) {
			return errInvalid
		}
		return nil
	}
	if data[p] == '-' {
		p++
		if err := mustDigit(); err != nil {
			return 0, err
		}
	}
	if data[p] == '0' {
		p++
	} else {
		digits()
	}
	if p < len(data) && data[p] == '.' {
		p++
		if err := mustDigit(); err != nil {
			return 0, err
		}
		digits()
	}
	if p < len(data) && (data[p] == 'e' || data[p] == 'E') {
		p++
		if p < len(data) && (data[p] == '+' || data[p] == '-') {
			p++
		}
		if err := mustDigit(); err != nil {
			return 0, err
		}
		digits()
	}
	return p, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanString returns the length of the JSON string (quotes included) at the
// start of data, whose first byte is '"'.
func scanString(data []byte) (int, error) {
	p := 1
	for p < len(data) {
		c := data[p]
		switch {
		case c == '"':
			return p + 1, nil
		case c == '\\':
			n, err := scanEscape(data[p:])
			if err != nil {
				return 0, err
			}
			p += n
		case c <= 0x1f:
			return 0, errInvalid // control characters must be escaped
		default:
			n := utf8Valid(data[p:])
			if n == 0 {
				return 0, errIncomplete
			}
			if n < 0 {
				return 0, errInvalid
			}
			p += n
		}
	}
	return 0, errIncomplete
}

// scanEscape returns the length of the escape at the start of data (its
// backslash included): a two-character escape, or \uXXXX, where a high
// surrogate must be followed at once by a \u escape of a low one.
func scanEscape(data []byte) (int, error) {
	if len(data) < 2 {
		return 0, errIncomplete
	}
	switch data[1] {
	case 'b', 'f', 'n', 'r', 't', '/', '"', '\\':
		return 2, nil
	case 'u':
	default:
		return 0, errInvalid
	}
	v, err := hex4(data[2:])
	if err != nil {
		return 0, err
	}
	switch {
	case isSurrogateLow(v):
		return 0, errInvalid
	case !isSurrogateHigh(v):
		return 6, nil
	}
	rest := data[6:]
	if len(rest) == 0 {
		return 0, errIncomplete
	}
	if rest[0] != '\\' {
		return 0, errInvalid
	}
	if len(rest) == 1 {
		return 0, errIncomplete
	}
	if rest[1] != 'u' {
		return 0, errInvalid
	}
	lo, err := hex4(rest[2:])
	if err != nil {
		return 0, err
	}
	if !isSurrogateLow(lo) {
		return 0, errInvalid
	}
	return 12, nil
}

// hex4 reads the four hex digits of a \u escape. SPDK, too, wants one byte
// past them before it calls the escape complete; a string cannot end there
// anyway.
func hex4(data []byte) (uint16, error) {
	var v uint16
	for i := 0; i < 4; i++ {
		if i == len(data) {
			return 0, errIncomplete
		}
		d, ok := hexValue(data[i])
		if !ok {
			return 0, errInvalid
		}
		v = v<<4 | uint16(d)
	}
	if len(data) == 4 {
		return 0, errIncomplete
	}
	return v, nil
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isSurrogateHigh(v uint16) bool { return v >= 0xD800 && v <= 0xDBFF }
func isSurrogateLow(v uint16) bool  { return v >= 0xDC00 && v <= 0xDFFF }

// utf8Valid returns the length of the UTF-8 sequence at the start of data,
// 0 if data ends inside it, or -1 if it is invalid. Like SPDK, it reports
// a sequence cut by the end of data as incomplete before it checks the
// bytes it has.
func utf8Valid(data []byte) int {
	tail := func(b byte) bool { return b >= 0x80 && b <= 0xBF }
	if len(data) == 0 {
		return 0
	}
	b0 := data[0]
	switch {
	case b0 <= 0x7F:
		return 1
	case b0 <= 0xC1:
		return -1
	}
	if len(data) < 2 {
		return 0
	}
	b1 := data[1]
	if b0 <= 0xDF {
		if !tail(b1) {
			return -1
		}
		return 2
	}
	if len(data) < 3 {
		return 0
	}
	b2 := data[2]
	switch {
	case b0 == 0xE0:
		if b1 < 0xA0 || b1 > 0xBF || !tail(b2) {
			return -1
		}
		return 3
	case b0 == 0xED && b1 >= 0xA0:
		return -1 // a UTF-16 surrogate encoded in UTF-8
	case b0 <= 0xEF:
		if !tail(b1) || !tail(b2) {
			return -1
		}
		return 3
	}
	if len(data) < 4 {
		return 0
	}
	b3 := data[3]
	switch {
	case b0 == 0xF0:
		if b1 < 0x90 || b1 > 0xBF || !tail(b2) || !tail(b3) {
			return -1
		}
	case b0 <= 0xF3:
		if !tail(b1) || !tail(b2) || !tail(b3) {
			return -1
		}
	case b0 == 0xF4:
		if b1 < 0x80 || b1 > 0x8F || !tail(b2) || !tail(b3) {
			return -1
		}
	default:
		return -1
	}
	return 4
}
