package allocator

import "fmt"

// formatBytes renders n for a person: bytes below 1 KiB, otherwise the
// largest binary unit that keeps the value under 1024, with one decimal
// ("1.5 GiB"). Error messages use it so that a size reads at a glance.
func formatBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	const units = "KMGTPE"
	v, u := float64(n)/1024, 0
	// Move up while the value would print as 1024.0 or more.
	for v >= 1023.95 && u < len(units)-1 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[u])
}

// plural renders a count with its noun in the right number ("1 vd", "2 vds").
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
