package nvmetcp

import (
	"fmt"
	"io"
	"net"
)

// inlineDataMax is the largest data the Writer copies next to its header
// rather than referencing: below it a copy costs less than an extra iovec.
const inlineDataMax = 512

// Writer sends PDUs to an io.Writer with as few system calls as the queue
// allows: Queue encodes headers into one internal buffer and references
// data slices without copying them; Flush hands header, data and digest
// pieces of every queued PDU to one net.Buffers write, which is a single
// writev on a TCP connection.
//
// Ownership: the Data of a queued PDU must stay unchanged until Flush
// returns; the Writer keeps no reference after that. The PDU struct itself
// may be reused as soon as Queue returns.
//
// A Writer is not safe for concurrent use. After a failed write every call
// returns the same error: part of a PDU may have gone out, so the stream is
// unusable.
type Writer struct {
	// Encoder holds the connection's negotiated digests and the peer's data
	// alignment; set it after the ICReq/ICResp exchange.
	Encoder Encoder

	w     io.Writer
	arena []byte  // encoded headers, small data and digests of queued PDUs
	items []piece // what to send, in order
	iov   [][]byte
	bufs  net.Buffers // kept in the struct so WriteTo does not allocate
	err   error
}

// piece is a range of the arena, or (ext != nil) a caller's data slice.
type piece struct {
	start, end int
	ext        []byte
}

// NewWriter returns a Writer sending to w, with a zero Encoder.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, arena: make([]byte, 0, 4096)}
}

func (w *Writer) addArena(start int) {
	end := len(w.arena)
	if end == start {
		return
	}
	if k := len(w.items) - 1; k >= 0 && w.items[k].ext == nil && w.items[k].end == start {
		w.items[k].end = end
		return
	}
	w.items = append(w.items, piece{start: start, end: end})
}

// Queue encodes p and adds it to the PDUs the next Flush sends. An
// *EncodeError leaves the queue as it was.
func (w *Writer) Queue(p *PDU) error {
	if w.err != nil {
		return w.err
	}
	start := len(w.arena)
	arena, err := w.Encoder.AppendHeader(w.arena, p)
	if err != nil {
		return err
	}
	w.arena = arena
	if len(p.Data) <= inlineDataMax {
		w.arena = append(w.arena, p.Data...)
		w.addArena(start)
	} else {
		w.addArena(start)
		w.items = append(w.items, piece{ext: p.Data})
	}
	start = len(w.arena)
	w.arena = w.Encoder.AppendDataDigest(w.arena, p)
	w.addArena(start)
	return nil
}

// Buffered returns the number of bytes queued and not yet flushed.
func (w *Writer) Buffered() int {
	n := 0
	for _, it := range w.items {
		if it.ext != nil {
			n += len(it.ext)
		} else {
			n += it.end - it.start
		}
	}
	return n
}

// Flush writes every queued PDU.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.items) == 0 {
		return nil
	}
	w.iov = w.iov[:0]
	for _, it := range w.items {
		if it.ext != nil {
			w.iov = append(w.iov, it.ext)
		} else {
			w.iov = append(w.iov, w.arena[it.start:it.end])
		}
	}
	w.bufs = w.iov
	_, err := w.bufs.WriteTo(w.w)
	// Drop references to callers' data so that the Writer never pins it.
	clear(w.items)
	clear(w.iov)
	w.items = w.items[:0]
	w.arena = w.arena[:0]
	w.bufs = nil
	if err != nil {
		w.err = fmt.Errorf("nvmetcp: write: %w", err)
		return w.err
	}
	return nil
}

// WritePDU queues p and flushes: one PDU, one write.
func (w *Writer) WritePDU(p *PDU) error {
	if err := w.Queue(p); err != nil {
		return err
	}
	return w.Flush()
}
