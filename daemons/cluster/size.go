package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/virtual-disk-array/vda"
)

// size is a flag's byte count: a number with an optional binary unit,
// such as 64MiB, 1GiB or 1G (all powers of 1024).
type size uint64

func (s size) String() string { return vda.FormatSize(uint64(s)) }

// UnmarshalText parses a size for kong.
func (s *size) UnmarshalText(text []byte) error {
	in := strings.TrimSpace(string(text))
	num := strings.TrimRightFunc(in, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(in[len(num):]))
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kib": 10, "m": 20, "mib": 20, "g": 30, "gib": 30, "t": 40, "tib": 40}
	sh, ok := shift[unit]
	n, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil || n > (1<<63)>>sh {
		return fmt.Errorf("size %q: a number of bytes, or with a unit KiB, MiB, GiB or TiB", in)
	}
	*s = size(n << sh)
	return nil
}
