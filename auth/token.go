package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"strings"
)

// An API token is the string "vda_<id>_<secret>":
//
//   - id is IDLen characters of lowercase base32 (a-z, 2-7). It is public:
//     it names the token in logs, in ListToken and in the store's key.
//   - secret is 32 random bytes in base64url without padding (43
//     characters). Only its hash is stored.
//
// The secret is hashed with plain SHA-256, not a slow password KDF: it is
// 256 bits from crypto/rand, so no dictionary or brute-force search can
// reach it, and a KDF would only slow every call down. A stolen database
// yields hashes that cannot be turned back into tokens.
const (
	// Prefix starts every token, so that secret scanners and humans can
	// recognise one.
	Prefix = "vda_"
	// IDLen is the length of a token's public id.
	IDLen = 12
	// secretBytes is the entropy of a token's secret.
	secretBytes = 32
	// maxTokenLen bounds what Parse looks at.
	maxTokenLen = 256
)

var (
	idEncoding     = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	secretEncoding = base64.RawURLEncoding.Strict()
	secretLen      = secretEncoding.EncodedLen(secretBytes)
)

// ErrMalformed means a string is not an API token. Its messages never
// repeat the input, which may be a secret.
var ErrMalformed = errors.New("malformed API token: want vda_<id>_<secret>")

// NewToken returns a fresh token: the bearer string to give its owner
// once, its public id, and the hash of its secret to store.
func NewToken() (bearer, id string, hash []byte) {
	var idRaw [8]byte
	secret := make([]byte, secretBytes)
	// crypto/rand.Read never fails (it crashes the program if the system's
	// source does).
	_, _ = rand.Read(idRaw[:])
	_, _ = rand.Read(secret)
	id = idEncoding.EncodeToString(idRaw[:])[:IDLen]
	s := secretEncoding.EncodeToString(secret)
	return Prefix + id + "_" + s, id, Hash(s)
}

// Parse splits a bearer token into its public id and its secret. Anything
// but a well-formed token is an error wrapping ErrMalformed; Parse never
// panics, whatever the input.
func Parse(bearer string) (id, secret string, err error) {
	if len(bearer) > maxTokenLen {
		return "", "", ErrMalformed
	}
	rest, ok := strings.CutPrefix(bearer, Prefix)
	if !ok {
		return "", "", ErrMalformed
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || !validID(id) || len(secret) != secretLen {
		return "", "", ErrMalformed
	}
	raw, err := secretEncoding.DecodeString(secret)
	if err != nil || len(raw) != secretBytes {
		return "", "", ErrMalformed
	}
	return id, secret, nil
}

// validID says whether id has the shape of a token id.
func validID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// Hash returns the SHA-256 of a token's secret (the part after the id, as
// written), which is what the store keeps. Plain SHA-256 on purpose: the
// secret is 256 random bits, so a slow KDF would add cost and no safety.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Matches says, in constant time, whether secret hashes to hash.
func Matches(secret string, hash []byte) bool {
	return subtle.ConstantTimeCompare(Hash(secret), hash) == 1
}
