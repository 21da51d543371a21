package allocator

import "fmt"

// plural renders a count with its noun in the right number ("1 vd", "2 vds").
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
