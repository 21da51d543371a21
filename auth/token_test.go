package auth_test

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda/auth"
)

var tokenRE = regexp.MustCompile(`^vda_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$`)

func TestNewToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		bearer, id, hash := auth.NewToken()
		require.Regexp(t, tokenRE, bearer)
		assert.True(t, strings.HasPrefix(bearer, "vda_"+id+"_"))
		assert.False(t, seen[id], "ids repeat")
		seen[id] = true

		gotID, secret, err := auth.Parse(bearer)
		require.NoError(t, err)
		assert.Equal(t, id, gotID)
		assert.Equal(t, bearer, "vda_"+id+"_"+secret)
		assert.Equal(t, auth.Hash(secret), hash)
		assert.Len(t, hash, 32)
		assert.True(t, auth.Matches(secret, hash))
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		require.NoError(t, err)
		assert.Len(t, raw, 32, "a 256-bit secret")
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	good, id, _ := auth.NewToken()
	_, secret, err := auth.Parse(good)
	require.NoError(t, err)
	tests := map[string]string{
		"empty":             "",
		"garbage":           "garbage",
		"no prefix":         strings.TrimPrefix(good, "vda_"),
		"other prefix":      "vdb_" + id + "_" + secret,
		"upper-case prefix": "VDA_" + id + "_" + secret,
		"no secret":         "vda_" + id,
		"empty secret":      "vda_" + id + "_",
		"short id":          "vda_" + id[1:] + "_" + secret,
		"long id":           "vda_" + id + "a_" + secret,
		"upper-case id":     "vda_" + strings.ToUpper(id) + "_" + secret,
		"id outside base32": "vda_" + "0" + id[1:] + "_" + secret,
		"short secret":      "vda_" + id + "_" + secret[1:],
		"long secret":       "vda_" + id + "_" + secret + "A",
		"padded secret":     "vda_" + id + "_" + secret + "=",
		"standard base64":   "vda_" + id + "_" + strings.Repeat("+", 43),
		// 43 characters carry 258 bits: the last one's low 2 bits must be 0.
		"non-canonical last char": "vda_" + id + "_" + secret[:42] + "B",
		"spaces":                  " " + good,
		"huge":                    "vda_" + id + "_" + strings.Repeat("A", 10000),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := auth.Parse(in)
			require.ErrorIs(t, err, auth.ErrMalformed)
			if len(in) > 8 {
				assert.NotContains(t, err.Error(), in[4:], "the error repeats the input")
			}
		})
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	_, _, hash := auth.NewToken()
	other, _, _ := auth.NewToken()
	_, secret, err := auth.Parse(other)
	require.NoError(t, err)
	assert.False(t, auth.Matches(secret, hash), "another token's secret")
	assert.False(t, auth.Matches(secret, nil), "no hash")
	assert.False(t, auth.Matches(secret, hash[:16]), "a short hash")
}

// FuzzParse: Parse never panics, and whatever it accepts is a token that
// prints back to the input.
func FuzzParse(f *testing.F) {
	good, id, _ := auth.NewToken()
	for _, s := range []string{"", "vda_", "vda__", good, good + "x", "vda_" + id + "_", "vda_" + id + "_" + "\x00", "Bearer " + good} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := auth.Parse(s)
		if err != nil {
			require.ErrorIs(t, err, auth.ErrMalformed)
			assert.Empty(t, id)
			assert.Empty(t, secret)
			return
		}
		assert.Equal(t, s, "vda_"+id+"_"+secret)
		assert.Regexp(t, tokenRE, s)
	})
}
