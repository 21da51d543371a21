package nvmetcp

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSQEAccessors(t *testing.T) {
	var s SQE
	s.SetOpcode(0x02)
	s.SetFlags(0x02) // FUSE 2
	s.SetPSDT(PSDTSGL)
	s.SetCID(0x1057)
	s.SetNSID(0xFFFFFFFF)
	s.SetSGL(SGLTransport, 0x1122334455667788, 131072)
	for i := 10; i <= 15; i++ {
		s.SetCDW(i, uint32(0xA0+i))
	}
	assert.Equal(t, uint8(0x02), s.Opcode())
	assert.Equal(t, uint8(0x42), s.Flags())
	assert.Equal(t, uint8(2), s.FUSE())
	assert.Equal(t, uint8(PSDTSGL), s.PSDT())
	assert.Equal(t, uint16(0x1057), s.CID())
	assert.Equal(t, uint32(0xFFFFFFFF), s.NSID())
	assert.Equal(t, uint8(0x5A), s.SGLIdentifier())
	assert.Equal(t, uint8(SGLTypeTransportDataBlock), s.SGLType())
	assert.Equal(t, uint8(SGLSubtypeTransport), s.SGLSubtype())
	assert.Equal(t, uint64(0x1122334455667788), s.SGLAddress())
	assert.Equal(t, uint32(131072), s.SGLLength())
	got := []uint32{s.CDW10(), s.CDW11(), s.CDW12(), s.CDW13(), s.CDW14(), s.CDW15()}
	assert.Equal(t, []uint32{0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF}, got)
	assert.Equal(t, s.NSID(), s.CDW(1))

	want := SQE{0: 0x02, 1: 0x42, 2: 0x57, 3: 0x10, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff,
		24: 0x88, 25: 0x77, 26: 0x66, 27: 0x55, 28: 0x44, 29: 0x33, 30: 0x22, 31: 0x11,
		32: 0x00, 33: 0x00, 34: 0x02, 35: 0x00, 39: 0x5A,
		40: 0xAA, 44: 0xAB, 48: 0xAC, 52: 0xAD, 56: 0xAE, 60: 0xAF}
	assert.Equal(t, want, s)

	var f SQE
	f.SetOpcode(OpcodeFabrics)
	f[4] = 0x01
	assert.Equal(t, uint8(0x01), f.FCType())
}

func TestCQEAccessors(t *testing.T) {
	var c CQE
	c.SetDW0(0x1E01007F)
	c.SetDW1(0x08000020)
	c.SetSQHead(22)
	c.SetSQID(1)
	c.SetCID(31)
	assert.Equal(t, uint64(0x080000201E01007F), c.Result())
	assert.Equal(t, uint16(22), c.SQHead())
	assert.Equal(t, uint16(1), c.SQID())
	assert.Equal(t, uint16(31), c.CID())
	assert.True(t, c.Success())
	assert.False(t, c.Phase())

	// Transient Transport Error (generic 0x22), DNR, phase 1.
	c.SetStatus(StatusWord(0, 0x22, true) | 1)
	assert.True(t, c.Phase())
	assert.Equal(t, uint8(0x22), c.SC())
	assert.Equal(t, uint8(0), c.SCT())
	assert.True(t, c.DNR())
	assert.False(t, c.More())
	assert.False(t, c.Success())
	assert.Equal(t, uint16(0x8045), c.Status())

	c.SetStatus(StatusWord(1, 0x82, false) | 1<<14)
	assert.Equal(t, uint8(1), c.SCT())
	assert.Equal(t, uint8(0x82), c.SC())
	assert.True(t, c.More())
	assert.Equal(t, []byte{0x04, 0x43}, c[14:16])
}

// FuzzSQE checks that each accessor reads exactly its bytes and that each
// setter writes exactly them, for any SQE.
func FuzzSQE(f *testing.F) {
	for _, name := range captureNames() {
		if roleOf(name) != RoleController {
			continue
		}
		for _, d := range decodeStream(f, loadHex(f, name), ReaderConfig{}) {
			if d.PDU.Type == TypeCapsuleCmd {
				f.Add(d.PDU.SQE[:])
			}
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var s SQE
		copy(s[:], in)
		le := binary.LittleEndian
		require.Equal(t, s[0], s.Opcode())
		require.Equal(t, s[1], s.Flags())
		require.Equal(t, s[1]&3, s.FUSE())
		require.Equal(t, s[1]>>6, s.PSDT())
		require.Equal(t, le.Uint16(s[2:]), s.CID())
		require.Equal(t, le.Uint32(s[4:]), s.NSID())
		require.Equal(t, s[4], s.FCType())
		require.Equal(t, s[39], s.SGLIdentifier())
		require.Equal(t, s[39]>>4, s.SGLType())
		require.Equal(t, s[39]&0xf, s.SGLSubtype())
		require.Equal(t, le.Uint64(s[24:]), s.SGLAddress())
		require.Equal(t, le.Uint32(s[32:]), s.SGLLength())
		for i := 0; i < 16; i++ {
			require.Equal(t, le.Uint32(s[4*i:]), s.CDW(i))
		}

		// Rebuild it with setters alone.
		var z SQE
		z.SetOpcode(s.Opcode())
		z.SetFlags(s.Flags())
		z.SetCID(s.CID())
		z.SetNSID(s.NSID())
		for i := 2; i < 6; i++ {
			z.SetCDW(i, s.CDW(i))
		}
		z.SetSGL(s.SGLIdentifier(), s.SGLAddress(), s.SGLLength())
		for i := 10; i < 16; i++ {
			z.SetCDW(i, s.CDW(i))
		}
		want := s
		want[1] = want[1]&0x3f | PSDTSGL<<6 // SetSGL sets PSDT
		want[36], want[37], want[38] = 0, 0, 0
		require.Equal(t, want, z)

		// A setter leaves every other byte alone.
		c := s
		c.SetCDW(12, ^s.CDW(12))
		for i := range c {
			if i < 48 || i >= 52 {
				require.Equal(t, s[i], c[i], "byte %d", i)
			}
		}
		c = s
		c.SetPSDT(s.FUSE())
		require.Equal(t, s.FUSE(), c.FUSE())
		require.Equal(t, s[1]&0x3c, c[1]&0x3c)
	})
}
