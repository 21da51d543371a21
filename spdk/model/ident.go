package model

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
)

// Identifiers: uuids, NGUIDs and NQNs, formatted and checked as SPDK does.

const (
	zeroUUID = "00000000-0000-0000-0000-000000000000"
	// uuidNQNPrefix starts a uuid-based NQN, the form of generated host
	// NQNs.
	uuidNQNPrefix = "nqn.2014-08.org.nvmexpress:uuid:"
	discoveryNQN  = "nqn.2014-08.org.nvmexpress.discovery"
)

// newUUID returns a random (version 4) uuid in lower-case text form.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("model: no randomness: %v", err)) // crypto/rand never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// parseUUID parses the 36-character text form (either case), as
// spdk_uuid_parse does.
func parseUUID(s string) ([16]byte, bool) {
	var b [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return b, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(b[:], []byte(h)); err != nil {
		return b, false
	}
	return b, true
}

// canonicalUUID returns s parsed and reformatted in lower case.
func canonicalUUID(s string) (string, bool) {
	b, ok := parseUUID(s)
	if !ok {
		return "", false
	}
	return formatUUID(b), true
}

// nguidOfUUID is the NGUID SPDK derives from a uuid: its 16 bytes as
// upper-case hex without dashes.
func nguidOfUUID(u string) string {
	b, _ := parseUUID(u)
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// parseNGUID parses 32 hex digits.
func parseNGUID(s string) ([16]byte, bool) {
	var b [16]byte
	if len(s) != 32 {
		return b, false
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return b, false
	}
	return b, true
}

// uuidOfNGUID is the uuid an NVMe initiator gives the bdev of a namespace
// with this NGUID.
func uuidOfNGUID(nguid string) string {
	b, _ := parseNGUID(nguid)
	return formatUUID(b)
}

// uuidOfNQN returns the uuid of a uuid-based NQN.
func uuidOfNQN(nqn string) (string, bool) {
	if !strings.HasPrefix(nqn, uuidNQNPrefix) {
		return "", false
	}
	return canonicalUUID(nqn[len(uuidNQNPrefix):])
}

// validNQN is nvmf_nqn_is_valid: the discovery NQN, a uuid-based NQN, or
// nqn.yyyy-mm.reverse.domain:user-string, 11 to 223 bytes long.
func validNQN(nqn string) bool {
	if len(nqn) > 223 || len(nqn) < 11 {
		return false
	}
	if nqn == discoveryNQN {
		return true
	}
	if strings.HasPrefix(nqn, uuidNQNPrefix) {
		if len(nqn) != len(uuidNQNPrefix)+36 {
			return false
		}
		_, ok := parseUUID(nqn[len(uuidNQNPrefix):])
		return ok
	}
	if !strings.HasPrefix(nqn, "nqn.") || len(nqn) < 12 {
		return false
	}
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	if !(digit(nqn[4]) && digit(nqn[5]) && digit(nqn[6]) && digit(nqn[7]) && nqn[8] == '-' &&
		digit(nqn[9]) && digit(nqn[10]) && nqn[11] == '.') {
		return false
	}
	end := strings.IndexByte(nqn, ':')
	if end < 0 || end >= len(nqn)-1 {
		return false // no user string
	}
	const (
		acceptLetter = iota
		acceptLDH
		acceptAny
	)
	alpha := func(c byte) bool { return c < unicode.MaxASCII && unicode.IsLetter(rune(c)) }
	state, label := acceptLetter, 0
	for i := 12; i < end; i++ {
		if label > 63 {
			return false
		}
		c := nqn[i]
		switch state {
		case acceptLetter:
			if !alpha(c) {
				return false
			}
			state = acceptAny
			label++
		case acceptLDH, acceptAny:
			switch {
			case alpha(c) || digit(c):
				state = acceptAny
				label++
			case c == '-':
				if i == end-1 {
					return false
				}
				state = acceptLDH
				label++
			case c == '.' && state == acceptAny:
				state = acceptLetter
				label = 0
			default:
				return false
			}
		}
	}
	return true
}
