package main

import (
	"fmt"
	"math/big"

	"github.com/virtual-disk-array/vda"
	"strings"
)

// Size is a byte count given on the command line: a number with an
// optional unit. Binary units are KiB, MiB, GiB, TiB, PiB, EiB and their
// short forms K, M, G, T, P, E (also Ki, Mi, ...); decimal units are KB,
// MB, GB, TB, PB, EB; B or no unit means bytes. Units ignore case, and a
// fraction is accepted when it makes whole bytes ("1.5GiB"). Size
// implements encoding.TextUnmarshaler, which kong uses to parse flags.
type Size uint64

// UnmarshalText parses text with ParseSize.
func (s *Size) UnmarshalText(text []byte) error {
	n, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// String formats s with FormatSize.
func (s Size) String() string { return FormatSize(uint64(s)) }

// sizeUnits maps a lower-cased unit to its multiple of bytes.
var sizeUnits = func() map[string]uint64 {
	m := map[string]uint64{"": 1, "b": 1}
	for i, p := range []string{"k", "m", "g", "t", "p", "e"} {
		bin := uint64(1) << (10 * (i + 1))
		dec := uint64(1)
		for range i + 1 {
			dec *= 1000
		}
		m[p], m[p+"i"], m[p+"ib"] = bin, bin, bin
		m[p+"b"] = dec
	}
	return m
}()

const sizeSyntax = "want a whole number of bytes, or a number with a unit: KiB, MiB, GiB, TiB, PiB (also K, M, G, T, P), or decimal KB, MB, GB, TB, PB"

// ParseSize parses a size such as "10GiB", "512M", "10GB" or "4096" into
// bytes. It fails on an empty or malformed size, an unknown unit, a
// fraction of a byte, and a size past 2^64-1 bytes.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("invalid size %q: %s", s, sizeSyntax)
	}
	end := 0
	for end < len(t) && (t[end] >= '0' && t[end] <= '9' || t[end] == '.') {
		end++
	}
	num, unit := t[:end], strings.ToLower(strings.TrimSpace(t[end:]))
	intPart, frac, hasDot := strings.Cut(num, ".")
	if num == "" || strings.Contains(frac, ".") || (intPart == "" && frac == "") || (hasDot && frac == "") {
		return 0, fmt.Errorf("invalid size %q: %s", s, sizeSyntax)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q; %s", s, t[end:], sizeSyntax)
	}
	// value = (intPart.frac) * mult, computed exactly.
	digits, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: %s", s, sizeSyntax)
	}
	v := new(big.Int).Mul(digits, new(big.Int).SetUint64(mult))
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	q, r := new(big.Int).QuoRem(v, scale, new(big.Int))
	if r.Sign() != 0 {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	if !q.IsUint64() {
		return 0, fmt.Errorf("invalid size %q: too large (at most 16 EiB - 1 byte)", s)
	}
	return q.Uint64(), nil
}

// FormatSize formats n bytes for people: below 1 KiB as "512 B", else with
// one decimal in the largest binary unit it reaches ("10.0 GiB",
// "1.5 MiB"). It rounds, so it is not exact.
func FormatSize(n uint64) string { return vda.FormatSize(n) }
