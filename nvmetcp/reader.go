package nvmetcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Role says which side of a connection a Reader serves, and so which PDU
// types it accepts.
type Role uint8

// Roles. The zero value is the controller (target) side.
const (
	// RoleController reads what hosts send: ICReq, H2CTermReq,
	// CapsuleCmd, H2CData.
	RoleController Role = iota
	// RoleHost reads what controllers send: ICResp, C2HTermReq,
	// CapsuleResp, C2HData, R2T.
	RoleHost
)

// String returns "controller" or "host".
func (r Role) String() string {
	switch r {
	case RoleController:
		return "controller"
	case RoleHost:
		return "host"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Buffer sizes of a Reader.
const (
	// DefaultBufferSize is the read buffer of a Reader whose config leaves
	// BufferSize 0: room for several 4 KiB I/Os per read system call.
	DefaultBufferSize = 64 << 10
	// MinBufferSize is the smallest read buffer: a whole header with its
	// digest and the largest padding must fit.
	MinBufferSize = 4096

	maxMaxData = 1 << 30
)

// ReaderConfig configures a Reader. The zero value reads a controller's
// side of a fresh connection with 128 KiB of data at most per PDU.
type ReaderConfig struct {
	// Role is the side the Reader serves.
	Role Role
	// MaxData is the most data bytes one PDU may carry; more is answered
	// with KindDataLimit before any of it is read. 0 means DefaultMaxData.
	// A target sets it to the larger of its MAXH2CDATA and in-capsule data
	// size, a host to its largest transfer.
	MaxData int
	// PDA is the data alignment this side asked the peer for, 0's based in
	// dwords (0..31): the CPDA it sends in ICResp as a controller, the HPDA
	// it sends in ICReq as a host. Data must start at a multiple of
	// (PDA+1)×4 bytes.
	PDA uint8
	// Digests are the digests in force from the start; normally 0, then
	// set with SetDigests once ICReq/ICResp are exchanged.
	Digests Digests
	// Established starts the Reader past the ICReq/ICResp exchange, for a
	// stream picked up in its middle (tests, capture decoders).
	Established bool
	// BufferSize is the size of the read buffer; 0 means
	// DefaultBufferSize. Data up to a quarter of it is returned without a
	// copy out of that buffer.
	BufferSize int
}

// Validate reports every problem of the config.
func (c ReaderConfig) Validate() error {
	var errs []error
	if c.Role != RoleController && c.Role != RoleHost {
		errs = append(errs, fmt.Errorf("nvmetcp: invalid role %d", c.Role))
	}
	if c.MaxData < 0 || c.MaxData > maxMaxData {
		errs = append(errs, fmt.Errorf("nvmetcp: MaxData %d outside 0..%d", c.MaxData, maxMaxData))
	}
	if c.PDA > MaxPDA {
		errs = append(errs, fmt.Errorf("nvmetcp: PDA %d above %d", c.PDA, MaxPDA))
	}
	if c.Digests&^digestMask != 0 {
		errs = append(errs, fmt.Errorf("nvmetcp: invalid digests %#x", uint8(c.Digests)))
	}
	if c.BufferSize != 0 && (c.BufferSize < MinBufferSize || c.BufferSize > maxMaxData) {
		errs = append(errs, fmt.Errorf("nvmetcp: BufferSize %d outside %d..%d", c.BufferSize, MinBufferSize, maxMaxData))
	}
	return errors.Join(errs...)
}

// Reader reads PDUs from one connection and checks them against the
// specification and the connection's negotiated parameters.
//
// Ownership: the *PDU returned by Read or ReadHeader and the data it holds
// belong to the Reader and are valid until the next call of Read,
// ReadHeader or ReadData. Copy what must outlive that (the SQE is a value:
// assigning it copies it). Data of up to a quarter of the buffer size is a
// view of the read buffer; larger data lands in a Reader-owned buffer that
// grows to the largest PDU seen (never beyond MaxData) and is reused, so a
// steady stream of PDUs costs no allocations.
//
// A fatal error (any error except a *ProtocolError of KindDataDigest) is
// returned again by every later call: the stream has lost its framing.
// Errors of the underlying reader before any byte of a PDU was consumed
// (a read deadline, say) are the exception: they are returned as they are,
// wrapped, and a later call may retry. A clean end of stream between PDUs is
// io.EOF; an end inside a PDU is a *ProtocolError of KindTruncated.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	br       *bufio.Reader
	role     Role
	maxData  int
	align    int // (PDA+1)×4
	digests  Digests
	ready    bool // ICReq/ICResp seen
	aliasMax int

	off    int64 // stream offset of the next byte to consume
	pduOff int64 // stream offset of the current PDU

	pdu           PDU
	pending       int  // data bytes of the current PDU not read yet
	pendingDigest bool // a data digest follows them
	buf           []byte
	dg            [DigestLen]byte

	err error
}

// NewReader returns a Reader of r. It buffers r itself (reusing r when it
// is a large enough *bufio.Reader), so r should not be read by anyone else.
func NewReader(r io.Reader, cfg ReaderConfig) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	size := cfg.BufferSize
	if size == 0 {
		size = DefaultBufferSize
	}
	maxData := cfg.MaxData
	if maxData == 0 {
		maxData = DefaultMaxData
	}
	br := bufio.NewReaderSize(r, size)
	return &Reader{
		br:       br,
		role:     cfg.Role,
		maxData:  maxData,
		align:    (int(cfg.PDA) + 1) * 4,
		digests:  cfg.Digests,
		ready:    cfg.Established,
		aliasMax: br.Size() / 4,
	}, nil
}

// SetDigests sets the digests the peer's PDUs carry from the next PDU on,
// as settled by ICReq/ICResp. IC and TermReq PDUs never carry digests.
func (r *Reader) SetDigests(d Digests) { r.digests = d & digestMask }

// Digests returns the digests the Reader expects.
func (r *Reader) Digests() Digests { return r.digests }

// Established reports whether the ICReq/ICResp exchange is behind.
func (r *Reader) Established() bool { return r.ready }

// Offset returns the number of bytes of the stream consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// Buffered returns the number of bytes read from the underlying reader and
// not consumed yet: a caller that batches its answers (a target queueing
// completions) sends them when this is 0, before the next Read blocks.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Read reads the next PDU whole. When only its data digest is wrong it
// returns the PDU together with a *ProtocolError of KindDataDigest; the
// stream stays usable and the caller fails the command the PDU belongs to.
func (r *Reader) Read() (*PDU, error) {
	p, err := r.ReadHeader()
	if err != nil {
		return nil, err
	}
	if _, err := r.ReadData(nil); err != nil {
		if r.err != nil {
			return nil, err
		}
		return p, err
	}
	return p, nil
}

// ReadHeader reads and checks the next PDU up to its data: the data is left
// for ReadData, so that it can go straight into its final buffer (an
// H2CData into the command's buffer, a C2HData into the read's). The PDU's
// Data is nil; Header.DataLen() says how much follows. Calling ReadHeader
// or Read again without ReadData skips the data unchecked.
func (r *Reader) ReadHeader() (*PDU, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.pending > 0 || r.pendingDigest {
		n := r.pending
		if r.pendingDigest {
			n += DigestLen
		}
		if err := r.discard(n); err != nil {
			return nil, err
		}
		r.pending, r.pendingDigest = 0, false
	}
	r.pdu = PDU{}
	r.pduOff = r.off

	ch, err := r.br.Peek(CommonHeaderLen)
	if err != nil {
		if len(ch) == 0 && err == io.EOF {
			r.err = io.EOF
			return nil, io.EOF
		}
		if len(ch) > 0 {
			r.pdu.Header.Type = Type(ch[0])
		}
		return nil, r.peekErr(ch, err)
	}
	h := CommonHeader{
		Type:  Type(ch[0]),
		Flags: Flags(ch[1]),
		HLen:  ch[2],
		PDO:   ch[3],
		PLen:  binary.LittleEndian.Uint32(ch[4:]),
	}
	r.pdu.Header = h
	hd, dataLen, perr := r.checkCommon(h)
	if perr != nil {
		return nil, perr
	}
	need := int(h.HLen) + hd
	hdr, err := r.br.Peek(need)
	if err != nil {
		return nil, r.peekErr(hdr, err)
	}
	if hd != 0 {
		want := binary.LittleEndian.Uint32(hdr[h.HLen:])
		if got := CRC32C(hdr[:h.HLen]); got != want {
			return nil, r.fail(KindHeaderDigest, 0, "header digest %#08x, computed %#08x", want, got)
		}
	}
	if perr := r.decodeSpecific(hdr, dataLen); perr != nil {
		return nil, perr
	}
	skip := need
	if h.PDO != 0 && h.Type.carriesData() {
		skip = int(h.PDO) // the padding is reserved: skipped unread
	}
	if err := r.discard(skip); err != nil {
		return nil, err
	}
	r.pending = dataLen
	r.pendingDigest = h.Flags&FlagDDGST != 0
	r.pdu.Type = h.Type
	r.pdu.Flags = h.Flags
	if h.Type == TypeICReq || h.Type == TypeICResp {
		r.ready = true
	}
	return &r.pdu, nil
}

// ReadData reads the data of the PDU the last ReadHeader returned and
// checks its digest. With a non-nil dst, the data is read into dst, which
// must hold Header.DataLen() bytes, and dst[:n] is returned; with nil it is
// returned from the Reader's memory (see the ownership rule). The data is
// also set as the PDU's Data. A PDU without data gives an empty slice. A
// data digest mismatch returns the data with a *ProtocolError of
// KindDataDigest; the Reader stays usable.
func (r *Reader) ReadData(dst []byte) ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	n := r.pending
	if n == 0 && !r.pendingDigest {
		return dst[:0], nil
	}
	dd := 0
	if r.pendingDigest {
		dd = DigestLen
	}
	var data []byte
	switch {
	case dst != nil:
		if len(dst) < n {
			return nil, fmt.Errorf("nvmetcp: ReadData: %d-byte buffer for %d data bytes", len(dst), n)
		}
		data = dst[:n]
		if err := r.readFull(data); err != nil {
			return nil, err
		}
		if err := r.readFull(r.dg[:dd]); err != nil {
			return nil, err
		}
	case n+dd <= r.aliasMax:
		b, err := r.br.Peek(n + dd)
		if err != nil {
			return nil, r.consumeErr(err)
		}
		data = b[:n:n]
		copy(r.dg[:], b[n:])
		if err := r.discard(n + dd); err != nil {
			return nil, err
		}
	default:
		if cap(r.buf) < n {
			r.buf = make([]byte, n)
		}
		data = r.buf[:n:n]
		if err := r.readFull(data); err != nil {
			return nil, err
		}
		if err := r.readFull(r.dg[:dd]); err != nil {
			return nil, err
		}
	}
	r.pending, r.pendingDigest = 0, false
	r.pdu.Data = data
	if dd != 0 {
		want := binary.LittleEndian.Uint32(r.dg[:])
		if got := CRC32C(data); got != want {
			return data, r.fail(KindDataDigest, 0, "data digest %#08x, computed %#08x", want, got)
		}
	}
	return data, nil
}

// checkCommon checks the common header against the PDU type, the role, the
// connection state and the negotiated digests, in the order of the fields
// so that the lowest wrong field is the one reported. It returns the header
// digest length and the data length.
func (r *Reader) checkCommon(h CommonHeader) (hd, dataLen int, _ *ProtocolError) {
	t := h.Type
	if !t.Valid() {
		return 0, 0, r.fail(KindType, 0, "reserved PDU type %#02x", uint8(t))
	}
	if t.FromHost() != (r.role == RoleController) {
		return 0, 0, r.fail(KindType, 0, "%v is never sent to a %v", t, r.role)
	}
	isIC := t == TypeICReq || t == TypeICResp
	switch {
	case r.ready && isIC:
		return 0, 0, r.fail(KindSequence, 0, "%v after connection initialisation", t)
	case !r.ready && !isIC && !(t == TypeC2HTermReq && r.role == RoleHost):
		return 0, 0, r.fail(KindSequence, 0, "%v before connection initialisation", t)
	}

	allowed := t.semanticFlags()
	if t.usesDigests() {
		allowed |= digestFlags
	}
	if bad := h.Flags &^ allowed; bad != 0 {
		return 0, 0, r.fail(KindFlags, 1, "flags %v not allowed", bad)
	}
	if t.usesDigests() && (h.Flags&FlagHDGST != 0) != (r.digests&HeaderDigest != 0) {
		return 0, 0, r.fail(KindFlags, 1, "HDGSTF %v, header digests negotiated %v",
			h.Flags&FlagHDGST != 0, r.digests&HeaderDigest != 0)
	}
	if h.Flags&(FlagLastPDU|FlagSuccess) == FlagSuccess {
		return 0, 0, r.fail(KindFlags, 1, "SUCCESS without LAST_PDU")
	}

	hlen := t.HeaderLen()
	if int(h.HLen) != hlen {
		return 0, 0, r.fail(KindHeaderLength, 2, "hlen %d, want %d", h.HLen, hlen)
	}
	if h.Flags&FlagHDGST != 0 {
		hd = DigestLen
	}
	full := uint32(hlen + hd)

	switch t {
	case TypeICReq, TypeICResp:
		if h.PDO != 0 {
			return 0, 0, r.fail(KindDataOffset, 3, "pdo %d, want 0", h.PDO)
		}
		if h.PLen != uint32(hlen) {
			return 0, 0, r.fail(KindPDULength, 4, "plen %d, want %d", h.PLen, hlen)
		}
		return hd, 0, nil
	case TypeH2CTermReq, TypeC2HTermReq:
		// The error data follows the header directly; senders leave PDO 0
		// (SPDK) but pointing it at the data is as good.
		if h.PDO != 0 && h.PDO != TermReqLen {
			return 0, 0, r.fail(KindDataOffset, 3, "pdo %d, want 0 or %d", h.PDO, TermReqLen)
		}
		if h.PLen < TermReqLen || h.PLen > TermReqLen+MaxTermReqData {
			return 0, 0, r.fail(KindPDULength, 4, "plen %d outside %d..%d", h.PLen, TermReqLen, TermReqLen+MaxTermReqData)
		}
		return 0, int(h.PLen) - TermReqLen, nil
	case TypeCapsuleResp, TypeR2T:
		if h.PDO != 0 {
			return 0, 0, r.fail(KindDataOffset, 3, "pdo %d, want 0", h.PDO)
		}
		if h.PLen != full {
			return 0, 0, r.fail(KindPDULength, 4, "plen %d, want %d", h.PLen, full)
		}
		return hd, 0, nil
	}

	// CapsuleCmd, H2CData, C2HData: data optional (capsule) or required.
	if h.PLen < full {
		return 0, 0, r.fail(KindPDULength, 4, "plen %d shorter than the %d-byte header", h.PLen, full)
	}
	if h.PDO == 0 {
		if h.PLen != full {
			return 0, 0, r.fail(KindDataOffset, 3, "pdo 0 with %d bytes after the header", h.PLen-full)
		}
		if t != TypeCapsuleCmd {
			return 0, 0, r.fail(KindPDULength, 4, "%v without data", t)
		}
		if h.Flags&FlagDDGST != 0 {
			return 0, 0, r.fail(KindFlags, 1, "DDGSTF on a PDU without data")
		}
		return hd, 0, nil
	}
	pdo := uint32(h.PDO)
	switch {
	case pdo < full:
		return 0, 0, r.fail(KindDataOffset, 3, "pdo %d inside the %d-byte header", pdo, full)
	case int(pdo)%r.align != 0:
		return 0, 0, r.fail(KindDataOffset, 3, "pdo %d not a multiple of %d", pdo, r.align)
	case pdo >= h.PLen:
		return 0, 0, r.fail(KindDataOffset, 3, "pdo %d not below plen %d", pdo, h.PLen)
	}
	if (h.Flags&FlagDDGST != 0) != (r.digests&DataDigest != 0) {
		return 0, 0, r.fail(KindFlags, 1, "DDGSTF %v, data digests negotiated %v",
			h.Flags&FlagDDGST != 0, r.digests&DataDigest != 0)
	}
	n := h.PLen - pdo
	if h.Flags&FlagDDGST != 0 {
		if n <= DigestLen {
			return 0, 0, r.fail(KindPDULength, 4, "plen %d leaves no data before the data digest", h.PLen)
		}
		n -= DigestLen
	}
	if uint64(n) > uint64(r.maxData) {
		return 0, 0, r.fail(KindDataLimit, 0, "%d data bytes, at most %d", n, r.maxData)
	}
	return hd, int(n), nil
}

// decodeSpecific fills the PDU-specific header from hdr and checks its
// fields. dataLen is the data length the common header implies.
func (r *Reader) decodeSpecific(hdr []byte, dataLen int) *ProtocolError {
	le := binary.LittleEndian
	p := &r.pdu
	switch p.Header.Type {
	case TypeICReq:
		p.ICReq = ICReq{
			PFV:     le.Uint16(hdr[8:]),
			HPDA:    hdr[10],
			Digests: Digests(hdr[11]) & digestMask, // bits 7:2 reserved
			MaxR2T:  le.Uint32(hdr[12:]),
		}
		return r.checkIC(p.ICReq.PFV, p.ICReq.HPDA, "HPDA")
	case TypeICResp:
		p.ICResp = ICResp{
			PFV:        le.Uint16(hdr[8:]),
			CPDA:       hdr[10],
			Digests:    Digests(hdr[11]) & digestMask,
			MaxH2CData: le.Uint32(hdr[12:]),
		}
		if err := r.checkIC(p.ICResp.PFV, p.ICResp.CPDA, "CPDA"); err != nil {
			return err
		}
		if m := p.ICResp.MaxH2CData; m < MinMaxH2CData || m%4 != 0 {
			return r.fail(KindUnsupported, 12, "MAXH2CDATA %d not a multiple of 4 of at least %d", m, MinMaxH2CData)
		}
	case TypeH2CTermReq, TypeC2HTermReq:
		p.TermReq = TermReq{FES: FES(le.Uint16(hdr[8:])), FEI: le.Uint32(hdr[10:])}
	case TypeCapsuleCmd:
		copy(p.SQE[:], hdr[8:72])
	case TypeCapsuleResp:
		copy(p.CQE[:], hdr[8:24])
	case TypeH2CData:
		p.H2CData = H2CData{
			CCCID:      le.Uint16(hdr[8:]),
			TTAG:       le.Uint16(hdr[10:]),
			DataOffset: le.Uint32(hdr[12:]),
			DataLength: le.Uint32(hdr[16:]),
		}
		return r.checkData(p.H2CData.DataOffset, p.H2CData.DataLength, dataLen)
	case TypeC2HData:
		p.C2HData = C2HData{
			CCCID:      le.Uint16(hdr[8:]),
			DataOffset: le.Uint32(hdr[12:]),
			DataLength: le.Uint32(hdr[16:]),
		}
		return r.checkData(p.C2HData.DataOffset, p.C2HData.DataLength, dataLen)
	case TypeR2T:
		p.R2T = R2T{
			CCCID:  le.Uint16(hdr[8:]),
			TTAG:   le.Uint16(hdr[10:]),
			Offset: le.Uint32(hdr[12:]),
			Length: le.Uint32(hdr[16:]),
		}
		if p.R2T.Length == 0 {
			return r.fail(KindField, 16, "R2TL 0")
		}
		if uint64(p.R2T.Offset)+uint64(p.R2T.Length) > math.MaxUint32 {
			return r.fail(KindDataRange, 0, "R2TO %d + R2TL %d beyond 2^32", p.R2T.Offset, p.R2T.Length)
		}
	}
	return nil
}

func (r *Reader) checkIC(pfv uint16, pda uint8, pdaName string) *ProtocolError {
	if pfv != 0 {
		return r.fail(KindUnsupported, 8, "PFV %d", pfv)
	}
	if pda > MaxPDA {
		return r.fail(KindUnsupported, 10, "%s %d above %d", pdaName, pda, MaxPDA)
	}
	return nil
}

func (r *Reader) checkData(off, length uint32, dataLen int) *ProtocolError {
	if uint64(length) != uint64(dataLen) {
		return r.fail(KindField, 16, "DATAL %d, PDU carries %d data bytes", length, dataLen)
	}
	if uint64(off)+uint64(length) > math.MaxUint32 {
		return r.fail(KindDataRange, 0, "DATAO %d + DATAL %d beyond 2^32", off, length)
	}
	return nil
}

// fail builds the error for the current PDU and, unless it is a data digest
// error, makes the Reader fail from now on.
func (r *Reader) fail(kind Kind, fei uint32, format string, args ...any) *ProtocolError {
	h := r.pdu.Header
	e := &ProtocolError{
		Kind:   kind,
		FES:    kind.fes(),
		FEI:    fei,
		Type:   h.Type,
		Offset: r.pduOff,
		Msg:    fmt.Sprintf(format, args...),
	}
	if (h.Type == TypeH2CTermReq || h.Type == TypeC2HTermReq) && h.Type.FromHost() == (r.role == RoleController) {
		e.FES = 0 // a TermReq is never answered with a TermReq
	}
	if !e.FES.hasFEI() {
		e.FEI = 0
	}
	if e.FES != 0 {
		e.Header = r.errantHeader(h)
	}
	if kind != KindDataDigest {
		r.err = e
	}
	return e
}

// errantHeader copies the buffered bytes of the current header (at most
// HLEN and 128) without waiting for more.
func (r *Reader) errantHeader(h CommonHeader) []byte {
	n := max(int(h.HLen), CommonHeaderLen)
	n = min(n, MaxTermReqData, r.br.Buffered())
	b, _ := r.br.Peek(n)
	return append([]byte(nil), b...)
}

// peekErr handles an error of Peek, which consumes nothing: an end of
// stream inside a PDU is final, anything else may be retried.
func (r *Reader) peekErr(got []byte, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return r.truncated(len(got))
	}
	if errors.Is(err, bufio.ErrBufferFull) { // cannot happen: sizes are checked
		r.err = fmt.Errorf("nvmetcp: read: %w", err)
		return r.err
	}
	return fmt.Errorf("nvmetcp: read: %w", err)
}

// consumeErr handles an error after part of the PDU was consumed: the
// framing is lost whatever the cause.
func (r *Reader) consumeErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return r.truncated(int(r.off - r.pduOff))
	}
	r.err = fmt.Errorf("nvmetcp: read %v at offset %d: %w", r.pdu.Header.Type, r.pduOff, err)
	return r.err
}

func (r *Reader) truncated(got int) error {
	h := r.pdu.Header
	e := &ProtocolError{
		Kind:   KindTruncated,
		Type:   h.Type,
		Offset: r.pduOff,
		Err:    io.ErrUnexpectedEOF,
	}
	if got < CommonHeaderLen {
		e.Msg = fmt.Sprintf("stream ends after %d bytes of a common header", got)
	} else {
		e.Msg = fmt.Sprintf("stream ends after %d of %d bytes", got, h.PLen)
	}
	r.err = e
	return e
}

func (r *Reader) discard(n int) error {
	d, err := r.br.Discard(n)
	r.off += int64(d)
	if err != nil {
		return r.consumeErr(err)
	}
	return nil
}

func (r *Reader) readFull(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := io.ReadFull(r.br, b)
	r.off += int64(n)
	if err != nil {
		return r.consumeErr(err)
	}
	return nil
}
