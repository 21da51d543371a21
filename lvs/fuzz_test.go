package lvs_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda/lvs"
)

const fuzzDevSize = 1 * mib

// fuzzStore is a small formatted device with a thin lvol (one cluster
// written) and a thick one.
func fuzzStore(t testing.TB) (*lvs.MemDevice, *lvs.Store) {
	dev := memDev(t, fuzzDevSize, 512)
	s, err := lvs.Format(dev, lvs.Options{Name: "fz", ClusterSize: 4096, MaxLvols: 8, JournalSize: 8192})
	require.NoError(t, err)
	a, err := s.Create("a", 16*4096, true)
	require.NoError(t, err)
	_, err = a.WriteAt(pattern(512, 4096, 1), 4096)
	require.NoError(t, err)
	_, err = s.Create("b", 3*4096, false)
	require.NoError(t, err)
	return dev, s
}

// exercise checks that a store Open accepted is consistent and usable, and
// that it opens again.
func exercise(t *testing.T, dev lvs.Device, s *lvs.Store) {
	if err := lvs.CheckInvariants(s); err != nil {
		t.Fatalf("Open accepted an inconsistent store: %v", err)
	}
	buf := make([]byte, 512)
	for _, l := range s.Lvols() {
		if l.Size() == 0 {
			continue
		}
		if _, err := l.ReadAt(buf, 0); err != nil {
			t.Fatalf("read %q: %v", l.Name(), err)
		}
		if _, err := l.WriteAt(buf, 0); err != nil && !errors.Is(err, lvs.ErrNoSpace) {
			t.Fatalf("write %q: %v", l.Name(), err)
		}
		_, _ = l.SeekData(0)
	}
	if _, err := s.Create("fuzz-new", 4096, false); err == nil {
		if err := s.Delete("fuzz-new"); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if err := lvs.CheckInvariants(s); err != nil {
		t.Fatalf("after changes: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := lvs.Open(dev)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if err := lvs.CheckInvariants(s2); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

// FuzzOpen feeds arbitrary bytes as the first MiB of a device.
func FuzzOpen(f *testing.F) {
	dev, s := fuzzStore(f)
	require.NoError(f, s.Close())
	f.Add(append([]byte(nil), dev.Bytes()[:64*kib]...))
	f.Add([]byte("VDA_LVS\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := memDev(t, fuzzDevSize, 512)
		copy(d.Bytes(), data)
		s, err := lvs.Open(d)
		if err != nil {
			return
		}
		exercise(t, d, s)
	})
}

// FuzzJournal plants an arbitrary payload as a journal entry with a valid
// header and checksum, which gets past the framing into record decoding
// and validation: Open must refuse it or end up consistent.
func FuzzJournal(f *testing.F) {
	f.Add(lvs.EncodeRecord(1, 2, true, 4, "c", 0, 0, 0))
	f.Add(lvs.EncodeRecord(2, 0, false, 0, "", 0, 0, 0))
	f.Add(lvs.EncodeRecord(3, 0, false, 2, "", 0, 0, 0))
	f.Add(lvs.EncodeRecord(3, 1, false, 1, "", 0, 0, 0))
	f.Add(lvs.EncodeRecord(4, 1, false, 0, "a", 0, 0, 0))
	f.Add(lvs.EncodeRecord(5, 0, false, 0, "", 40, 3, 0))
	f.Add(lvs.EncodeRecord(5, 0, false, 0, "", 0, 3, 0))
	f.Add(lvs.EncodeRecord(6, 0, false, 0, "", 0, 0, 16))
	f.Add(append(lvs.EncodeRecord(2, 0, false, 0, "", 0, 0, 0), lvs.EncodeRecord(1, 0, true, 1, "a", 0, 0, 0)...))
	f.Fuzz(func(t *testing.T, payload []byte) {
		dev, s := fuzzStore(t)
		require.NoError(t, lvs.AppendRawEntry(s, payload))
		s2, err := lvs.Open(dev)
		if err != nil {
			return
		}
		exercise(t, dev, s2)
	})
}

// FuzzCheckpoint plants an arbitrary checkpoint payload with a valid
// header and checksum as the newest checkpoint.
func FuzzCheckpoint(f *testing.F) {
	f.Add(uint32(0), make([]byte, 251*8))
	entry := make([]byte, 128)
	entry[8] = 2  // two clusters
	entry[24] = 1 // a uuid
	entry[40] = 1 // name length
	entry[41] = 'x'
	owners := make([]byte, 251*8)
	owners[5*8+5] = 1 << 0 // cluster 5: slot 0 (stored +1) in the top bits
	f.Add(uint32(1), append(entry, owners...))
	f.Fuzz(func(t *testing.T, nlvols uint32, payload []byte) {
		dev, s := fuzzStore(t)
		require.NoError(t, lvs.WriteRawCheckpoint(s, nlvols, payload))
		s2, err := lvs.Open(dev)
		if err != nil {
			return
		}
		exercise(t, dev, s2)
	})
}
