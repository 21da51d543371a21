package nvmetcp

import (
	"fmt"
	"strings"
)

// FES is a fatal error status, the reason a TermReq gives.
type FES uint16

// Fatal error status values of H2CTermReq and C2HTermReq.
const (
	FESInvalidHeaderField   FES = 0x01 // FEI: byte offset of the bad field
	FESPDUSequenceError     FES = 0x02
	FESHeaderDigestError    FES = 0x03
	FESDataOutOfRange       FES = 0x04
	FESDataLimitExceeded    FES = 0x05 // named R2T Limit Exceeded in an H2CTermReq
	FESUnsupportedParameter FES = 0x06 // FEI: byte offset of the bad field
)

// String returns the specification's name of the status.
func (f FES) String() string {
	switch f {
	case FESInvalidHeaderField:
		return "Invalid PDU Header Field"
	case FESPDUSequenceError:
		return "PDU Sequence Error"
	case FESHeaderDigestError:
		return "Header Digest Error"
	case FESDataOutOfRange:
		return "Data Transfer Out of Range"
	case FESDataLimitExceeded:
		return "Data Transfer Limit Exceeded"
	case FESUnsupportedParameter:
		return "Unsupported Parameter"
	}
	return fmt.Sprintf("FES(%#02x)", uint16(f))
}

// hasFEI reports whether FEI carries a field offset for this status; for
// the others it is reserved.
func (f FES) hasFEI() bool { return f == FESInvalidHeaderField || f == FESUnsupportedParameter }

// Kind classifies a ProtocolError so that callers can branch on it.
type Kind uint8

// Kinds of ProtocolError, with the FES a target answers them with.
const (
	KindType         Kind = iota + 1 // reserved type, or one this side never receives: FES 1, FEI 0
	KindSequence                     // PDU not allowed in the connection's state: FES 2
	KindFlags                        // flag not allowed for the type, or digest flag not as negotiated: FES 1, FEI 1
	KindHeaderLength                 // HLEN not the type's: FES 1, FEI 2
	KindDataOffset                   // PDO wrong for the type, the data or the alignment: FES 1, FEI 3
	KindPDULength                    // PLEN wrong for the type or the header: FES 1, FEI 4
	KindField                        // PDU-specific field invalid: FES 1, FEI its offset
	KindUnsupported                  // ICReq/ICResp value not supported: FES 6, FEI its offset
	KindHeaderDigest                 // header digest mismatch: FES 3
	KindDataRange                    // data offset+length beyond 2^32 (or the command's buffer, when callers check): FES 4
	KindDataLimit                    // more data than the configured maximum: FES 5
	KindDataDigest                   // data digest mismatch; not fatal, the command fails instead
	KindTruncated                    // the stream ended inside a PDU; nothing can be sent back
)

// String returns a short name of the kind.
func (k Kind) String() string {
	switch k {
	case KindType:
		return "invalid PDU type"
	case KindSequence:
		return "PDU sequence error"
	case KindFlags:
		return "invalid flags"
	case KindHeaderLength:
		return "invalid header length"
	case KindDataOffset:
		return "invalid data offset"
	case KindPDULength:
		return "invalid PDU length"
	case KindField:
		return "invalid header field"
	case KindUnsupported:
		return "unsupported parameter"
	case KindHeaderDigest:
		return "header digest error"
	case KindDataRange:
		return "data transfer out of range"
	case KindDataLimit:
		return "data transfer limit exceeded"
	case KindDataDigest:
		return "data digest error"
	case KindTruncated:
		return "truncated PDU"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// fes returns the status a receiver reports for an error of kind k.
func (k Kind) fes() FES {
	switch k {
	case KindType, KindFlags, KindHeaderLength, KindDataOffset, KindPDULength, KindField:
		return FESInvalidHeaderField
	case KindSequence:
		return FESPDUSequenceError
	case KindUnsupported:
		return FESUnsupportedParameter
	case KindHeaderDigest:
		return FESHeaderDigestError
	case KindDataRange:
		return FESDataOutOfRange
	case KindDataLimit:
		return FESDataLimitExceeded
	}
	return 0
}

// ProtocolError is a malformed or unexpected PDU. A target answers a fatal
// one with a C2HTermReq (see TermReqPDU) and closes that connection; a host
// sends an H2CTermReq or just closes.
type ProtocolError struct {
	Kind Kind
	// FES is the status for the TermReq, 0 when none may be sent: for a
	// truncated stream, a data digest error (not fatal), and any error in a
	// received TermReq (a TermReq is never answered with one).
	FES FES
	// FEI is the byte offset of the offending field inside the PDU for
	// FESInvalidHeaderField and FESUnsupportedParameter, 0 otherwise.
	FEI uint32
	// Type is the type byte of the offending PDU, whatever its value.
	Type Type
	// Offset is the stream offset of the offending PDU's first byte.
	Offset int64
	Msg    string
	// Header holds up to 128 bytes of the offending PDU's header as
	// received, the error data of the TermReq. The Reader copies them.
	Header []byte
	// Err is the underlying cause, if any (io.ErrUnexpectedEOF for
	// KindTruncated).
	Err error
}

// Error reads like "nvmetcp: CapsuleCmd at offset 1224: hlen 71, want 72
// (Invalid PDU Header Field, FEI 2)".
func (e *ProtocolError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nvmetcp: %v at offset %d: %s", e.Type, e.Offset, e.Msg)
	if e.FES != 0 {
		fmt.Fprintf(&b, " (%v", e.FES)
		if e.FES.hasFEI() {
			fmt.Fprintf(&b, ", FEI %d", e.FEI)
		}
		b.WriteByte(')')
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Fatal reports whether the connection must end. Only a data digest error
// is not: the PDU was read whole, so the stream is still in step, and the
// command it belongs to fails with a transient transport error instead.
func (e *ProtocolError) Fatal() bool { return e.Kind != KindDataDigest }

// TermReqPDU returns the TermReq of type t (TypeC2HTermReq for a target,
// TypeH2CTermReq for a host) that reports e, and false when e must not be
// reported (FES 0).
func (e *ProtocolError) TermReqPDU(t Type) (PDU, bool) {
	if e.FES == 0 {
		return PDU{}, false
	}
	data := e.Header
	if len(data) > MaxTermReqData {
		data = data[:MaxTermReqData]
	}
	return PDU{Type: t, TermReq: TermReq{FES: e.FES, FEI: e.FEI}, Data: data}, true
}

// EncodeError is a PDU the Encoder refuses to produce because a receiver
// would reject it.
type EncodeError struct {
	Type Type
	Msg  string
}

// Error reads like "nvmetcp: cannot encode R2T: R2TL 0".
func (e *EncodeError) Error() string {
	return fmt.Sprintf("nvmetcp: cannot encode %v: %s", e.Type, e.Msg)
}
