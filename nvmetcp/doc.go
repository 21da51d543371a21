// Package nvmetcp is the PDU codec of NVMe/TCP (the NVMe over Fabrics TCP
// transport) for VDA's pure-Go target and initiator. It turns bytes into
// typed PDUs and back, and nothing more: connection set-up, command state,
// queues and I/O belong to its callers.
//
// What it covers: the nine PDU types (ICReq, ICResp, H2CTermReq,
// C2HTermReq, CapsuleCmd, CapsuleResp, H2CData, C2HData, R2T), their
// common and specific headers, header and data digests (CRC32C), data
// alignment (HPDA/CPDA, PDO padding), and the 64-byte SQE and 16-byte CQE
// as raw arrays with allocation-free accessors. The wire format follows
// the NVMe/TCP transport specification as Linux 6.1 and SPDK v26.05 speak
// it; docs/nvmetcp.md has the layouts.
//
// # Reading
//
// A [Reader] serves one side ([RoleController] or [RoleHost]) of one
// connection. For every PDU it checks, before reading any data:
//
//   - the type is defined and travels towards this side;
//   - ICReq/ICResp come first and only once (else a PDU Sequence Error);
//   - the flags are allowed for the type, HDGSTF and DDGSTF match the
//     negotiated digests (DDGSTF only on PDUs with data), SUCCESS comes with
//     LAST_PDU;
//   - HLEN is exactly the type's; PDO is 0 without data and otherwise
//     inside PLEN, past the header and its digest, and aligned to the PDA
//     this side asked for; PLEN is exact for fixed-size PDUs and leaves room
//     for the data digest;
//   - the data fits the configured maximum, so a length field never makes
//     the Reader allocate more than that;
//   - the header digest, then the PDU-specific fields: PFV 0, HPDA/CPDA at
//     most 31, MAXH2CDATA at least 4096 and a multiple of 4, DATAL equal to
//     the data carried, R2TL not 0, offset plus length within 32 bits;
//   - finally the data digest.
//
// Every failure is a *[ProtocolError] whose [Kind] callers branch on and
// whose FES and FEI fill the TermReq a target answers with
// ([ProtocolError.TermReqPDU]). The Reader never reads past PLEN, and after
// a fatal error it returns that error forever. A data digest mismatch is
// not fatal: the PDU was read whole, and the command fails instead.
//
// # Ownership
//
// The PDU returned by [Reader.Read] and [Reader.ReadHeader], and the data
// it holds, are valid until the next call on that Reader: small data is a
// view of the read buffer, large data sits in one Reader-owned buffer that
// is reused. [Reader.ReadData] can instead read the data straight into the
// caller's buffer. Steady-state reading does not allocate.
//
// # Writing
//
// An [Encoder] appends PDUs to a caller's buffer, setting HLEN, PDO, PLEN,
// the digest flags, the digests and the padding itself, and refuses what a
// Reader would reject. A [Writer] queues several PDUs, referencing their
// data without copying it, and sends them with one writev per Flush; the
// data must stay unchanged until Flush returns.
//
// Digests and alignment are per connection and become known only with
// ICReq/ICResp: set them with [Reader.SetDigests] and [Writer].Encoder once
// the exchange is done. Nothing here holds global mutable state; a Reader
// or a Writer is used by one goroutine at a time.
package nvmetcp
