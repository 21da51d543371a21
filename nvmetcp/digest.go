package nvmetcp

import "hash/crc32"

// castagnoli is read-only after init; crc32 recognises it and uses the
// CPU's CRC32C instruction where there is one.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the NVMe/TCP digest of b: CRC32C (Castagnoli), initial
// value and final XOR 0xFFFFFFFF. On the wire it is stored little-endian.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
