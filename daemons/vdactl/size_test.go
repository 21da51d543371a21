package main

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	const (
		KiB = uint64(1) << 10
		MiB = uint64(1) << 20
		GiB = uint64(1) << 30
		TiB = uint64(1) << 40
	)
	valid := []struct {
		in   string
		want uint64
	}{
		{"0", 0},
		{"4096", 4096},
		{"4096B", 4096},
		{"4KiB", 4 * KiB},
		{"512MiB", 512 * MiB},
		{"10GiB", 10 * GiB},
		{"1TiB", TiB},
		{"1PiB", 1 << 50},
		{"10G", 10 * GiB},
		{"512M", 512 * MiB},
		{"4K", 4 * KiB},
		{"2T", 2 * TiB},
		{"10Gi", 10 * GiB},
		{"10GB", 10_000_000_000},
		{"512MB", 512_000_000},
		{"1KB", 1000},
		{"1TB", 1_000_000_000_000},
		{"10gib", 10 * GiB},
		{"10 GiB", 10 * GiB},
		{" 10GiB ", 10 * GiB},
		{"1.5GiB", 3 * GiB / 2},
		{"0.5KiB", 512},
		{"1.5KB", 1500},
		{"15EiB", 15 << 60},
		{"18446744073709551615", math.MaxUint64},
	}
	for _, tc := range valid {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSize(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)

			var s Size
			require.NoError(t, s.UnmarshalText([]byte(tc.in)))
			assert.Equal(t, Size(tc.want), s)
		})
	}

	invalid := []struct {
		in, wantErr string
	}{
		{"", "invalid size"},
		{"   ", "invalid size"},
		{"abc", "invalid size"},
		{"GiB", "invalid size"},
		{"-1", "invalid size"},
		{"+1", "invalid size"},
		{"1.2.3", "invalid size"},
		{"10.", "invalid size"},
		{".", "invalid size"},
		{"1e9", "unknown unit"},
		{"10XB", "unknown unit"},
		{"10 GiB extra", "unknown unit"},
		{"0x10", "unknown unit"},
		{"1.5B", "not a whole number of bytes"},
		{"0.1KiB", "not a whole number of bytes"},
		{"16EiB", "too large"},
		{"18446744073709551616", "too large"},
		{"99999999999999999999999PiB", "too large"},
	}
	for _, tc := range invalid {
		t.Run("invalid/"+tc.in, func(t *testing.T) {
			t.Parallel()
			_, err := ParseSize(tc.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)

			var s Size
			assert.Error(t, s.UnmarshalText([]byte(tc.in)))
		})
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{4096, "4.0 KiB"},
		{1<<20 - 1, "1.0 MiB"},
		{3 << 19, "1.5 MiB"},
		{10 << 30, "10.0 GiB"},
		{10_000_000_000, "9.3 GiB"},
		{1 << 40, "1.0 TiB"},
		{1 << 50, "1.0 PiB"},
		{math.MaxUint64, "16.0 EiB"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, FormatSize(tc.in))
			assert.Equal(t, tc.want, Size(tc.in).String())
		})
	}
}

func TestPortalURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		withCA  bool
		want    string
		wantErr string
	}{
		{in: "127.0.0.1:9520", want: "http://127.0.0.1:9520"},
		{in: "portal.example:80", want: "http://portal.example:80"},
		{in: "http://127.0.0.1:9520", want: "http://127.0.0.1:9520"},
		{in: "https://portal.example/", want: "https://portal.example"},
		{in: "[::1]:9520", want: "http://[::1]:9520"},
		{in: "", wantErr: "empty"},
		{in: "ftp://x:21", wantErr: "scheme"},
		{in: "http://", wantErr: "no host"},
		{in: "127.0.0.1:9520", withCA: true, want: "https://127.0.0.1:9520"},
		{in: "https://portal.example:9520", withCA: true, want: "https://portal.example:9520"},
		{in: "http://portal.example:9520", withCA: true, wantErr: "plain http but a CA file is given"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s ca=%v", tc.in, tc.withCA), func(t *testing.T) {
			t.Parallel()
			got, err := portalURL(tc.in, tc.withCA)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
