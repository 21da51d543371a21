package target

import (
	"cmp"
	"math/bits"
	"slices"
	"time"

	"github.com/virtual-disk-array/vda/nvmetcp"
)

// Admin opcodes.
const (
	opGetLogPage  = 0x02
	opIdentify    = 0x06
	opSetFeatures = 0x09
	opGetFeatures = 0x0A
	opAER         = 0x0C
	opKeepAlive   = 0x18
)

// Feature identifiers.
const (
	featNumQueues = 0x07
	featAEC       = 0x0B
	featKATO      = 0x0F
)

const aerl = 3 // AERL, 0's based: 4 AERs held at most

func (c *conn) admin(sqe *nvmetcp.SQE, data []byte) error {
	ct := c.ctrl
	if !c.s.enabled(ct) && sqe.Opcode() != opKeepAlive {
		return c.respond(sqe, stSequence, 0, 0)
	}
	switch sqe.Opcode() {
	case opIdentify:
		return c.identify(sqe)
	case opGetLogPage:
		return c.getLogPage(sqe)
	case opSetFeatures, opGetFeatures:
		return c.features(sqe)
	case opKeepAlive:
		c.s.keepAlive(ct)
		return c.respond(sqe, stOK, 0, 0)
	case opAER:
		return c.aer(sqe)
	}
	return c.respond(sqe, st(0, scInvalidOpcode, true), 0, 0)
}

// aer holds an Asynchronous Event Request, or completes it at once with
// an event that waited for one.
func (c *conn) aer(sqe *nvmetcp.SQE) error {
	ct := c.ctrl
	s := c.s
	s.mu.Lock()
	if len(ct.pending) > 0 {
		e := ct.pending[0]
		ct.pending = ct.pending[1:]
		ct.masked |= e
		s.mu.Unlock()
		return c.respond(sqe, stOK, e.dw0(), 0)
	}
	full := len(ct.aers) > aerl
	if !full {
		ct.aers = append(ct.aers, sqe.CID())
	}
	s.mu.Unlock()
	if full {
		return c.respond(sqe, st(sctCmd, scAERLimit, true), 0, 0)
	}
	return nil // held: completes when an event is reported
}

// maxNSID is the NN the controller reports: the subsystem's most
// namespaces, else its largest NSID.
func (c *conn) maxNSID() uint32 {
	sub := c.ctrl.sub.Load()
	m := sub.MaxNamespaces
	for _, n := range sub.Namespaces {
		m = max(m, n.NSID)
	}
	return m
}

func (c *conn) identify(sqe *nvmetcp.SQE) error {
	cfg := c.s.cfg
	sub := c.ctrl.sub.Load()
	buf := &c.idBuf
	if c.ctrl.discovery {
		if uint8(sqe.CDW10()) != nvmetcp.CNSController {
			return c.respond(sqe, stInvalidField, 0, 0)
		}
		id := nvmetcp.DiscoveryIdentifyController{
			FR: cfg.Firmware, MDTS: uint8(bits.TrailingZeros32(cfg.MaxIO / 4096)), CNTLID: c.ctrl.id,
			VER: vsValue, OAES: evDiscovery.aecBit(), AERL: aerl, LPA: 0x04, MAXCMD: mqes + 1, KAS: 1,
			SGLS: 0x00100001, SUBNQN: nvmetcp.DiscoveryNQN,
		}
		id.Encode(buf)
		return c.sendData(sqe, buf[:], false)
	}
	switch cns := uint8(sqe.CDW10()); cns {
	case nvmetcp.CNSController:
		nn := c.maxNSID()
		// CMIC: multi-port, multi-controller, and ANA reporting (bit 3)
		// only when the subsystem has it, as SPDK.
		id := nvmetcp.IdentifyController{
			SN: sub.Serial, MN: sub.Model, FR: cfg.Firmware, RAB: 6, CMIC: 0x03,
			MDTS: uint8(bits.TrailingZeros32(cfg.MaxIO / 4096)), CNTLID: c.ctrl.id,
			VER: vsValue, OAES: evNSAttr.aecBit(),
			CTRATT: 1, CNTRLTYPE: nvmetcp.ControllerTypeIO, ACL: 3, AERL: aerl, LPA: 0x02, ELPE: 0, KAS: 1,
			SQES: 0x66, CQES: 0x44, MAXCMD: mqes + 1, NN: nn, MNAN: nn,
			ONCS: 0x0C, VWC: 0x05, SGLS: 0x00100001, SUBNQN: sub.NQN,
			IOCCSZ: (64 + cfg.InCapsuleData) / 16, IORCSZ: 1, MSDBD: 1,
		}
		if sub.ANAReporting {
			id.CMIC |= 0x08
			id.OAES |= evANAChange.aecBit()
			id.ANATT, id.ANACAP, id.ANAGRPMAX, id.NANAGRPID = 10, 0x47, nn, nn
		}
		id.Encode(buf)
	case nvmetcp.CNSControllerCSI:
		if uint8(sqe.CDW11()>>24) != 0 { // CSI
			return c.respond(sqe, stInvalidField, 0, 0)
		}
		id := nvmetcp.IdentifyControllerNVM{} // no Write Zeroes or DSM limits
		id.Encode(buf)
	case nvmetcp.CNSNamespace:
		n := c.ns(sqe.NSID())
		if n == nil {
			return c.respond(sqe, stInvalidNS, 0, 0)
		}
		bs := n.Dev.BlockSize()
		blocks := n.Dev.Size() / uint64(bs)
		id := nvmetcp.IdentifyNamespace{NSZE: blocks, NCAP: blocks, NUSE: blocks, NMIC: 1, NGUID: n.NGUID}
		if sub.ANAReporting {
			id.ANAGRPID = n.group()
		}
		id.LBAF[0] = nvmetcp.LBAFormat{LBADS: uint8(bits.TrailingZeros32(bs))}
		id.Encode(buf)
	case nvmetcp.CNSActiveNamespaces:
		var l nvmetcp.ActiveNamespaceList
		for _, n := range sub.Namespaces {
			l = append(l, n.NSID)
		}
		l.Encode(buf, sqe.NSID())
	case nvmetcp.CNSNamespaceDescriptors:
		n := c.ns(sqe.NSID())
		if n == nil {
			return c.respond(sqe, stInvalidNS, 0, 0)
		}
		d := nvmetcp.NamespaceDescriptors{NGUID: n.NGUID, UUID: n.UUID, HasCSI: true}
		d.Encode(buf)
	default:
		return c.respond(sqe, stInvalidField, 0, 0)
	}
	return c.sendData(sqe, buf[:], false)
}

type logPage interface {
	Len() int
	AppendRange(dst []byte, off uint64, n int) []byte
}

func (c *conn) getLogPage(sqe *nvmetcp.SQE) error {
	lid := uint8(sqe.CDW10())
	rae := sqe.CDW10()&(1<<15) != 0 // retain asynchronous event
	numd := (uint64(sqe.CDW11()&0xFFFF)<<16 | uint64(sqe.CDW10()>>16)) + 1
	off := uint64(sqe.CDW12()) | uint64(sqe.CDW13())<<32
	n := numd * 4
	if n > uint64(c.s.cfg.MaxIO) || off%4 != 0 || uint64(sqe.SGLLength()) < n {
		return c.respond(sqe, stInvalidField, 0, 0)
	}
	ct := c.ctrl
	s := c.s
	var page logPage
	switch {
	case lid == nvmetcp.LogErrorInformation:
		page = &nvmetcp.ErrorInformationLog{Entries: 1}
	case lid == nvmetcp.LogDiscovery && ct.discovery:
		entries, seq, _ := s.discovery(ct.hostNQN)
		s.mu.Lock()
		s.updateDiscoveryLocked(ct, entries, seq)
		page = discoveryLog(s.discGen, ct.disc)
		if !rae {
			ct.masked &^= evDiscovery
		}
		s.mu.Unlock()
	case ct.discovery:
		return c.respond(sqe, st(sctCmd, scInvalidLogPage, true), 0, 0)
	case lid == nvmetcp.LogSMARTHealth:
		page = &nvmetcp.SMARTLog{}
	case lid == nvmetcp.LogCommandsEffects:
		l := &nvmetcp.CommandEffectsLog{}
		for _, op := range []int{opGetLogPage, opIdentify, opSetFeatures, opGetFeatures, opAER, opKeepAlive} {
			l.Admin[op] = nvmetcp.EffectCSUPP
		}
		l.IO[opFlush] = nvmetcp.EffectCSUPP | nvmetcp.EffectLBCC
		l.IO[opWrite] = nvmetcp.EffectCSUPP | nvmetcp.EffectLBCC
		l.IO[opRead] = nvmetcp.EffectCSUPP
		l.IO[opWriteZeroes] = nvmetcp.EffectCSUPP | nvmetcp.EffectLBCC
		l.IO[opDSM] = nvmetcp.EffectCSUPP | nvmetcp.EffectLBCC
		page = l
	case lid == nvmetcp.LogChangedNamespaces:
		// Read and cleared at once (unless RAE), under the lock Notify
		// adds to it with.
		s.mu.Lock()
		page = nvmetcp.ChangedNamespaceList(ct.changedNS)
		if !rae {
			ct.changedNS = nil
			ct.masked &^= evNSAttr
		}
		s.mu.Unlock()
	case lid == nvmetcp.LogANA && ct.sub.Load().ANAReporting:
		s.mu.Lock()
		l := anaLog(ct.sub.Load(), sqe.CDW10()>>8&1 != 0)
		if !rae {
			ct.masked &^= evANAChange
		}
		s.mu.Unlock()
		page = l
	default:
		return c.respond(sqe, st(sctCmd, scInvalidLogPage, true), 0, 0)
	}
	if off > uint64(page.Len()) {
		return c.respond(sqe, stInvalidField, 0, 0)
	}
	return c.sendData(sqe, page.AppendRange(nil, off, int(n)), false)
}

// anaLog is the ANA log page of sub: one descriptor per ANA group that
// has namespaces, by group ID, each with its namespaces by NSID, as SPDK
// lists them.
func anaLog(sub *Subsystem, rgo bool) *nvmetcp.ANALog {
	l := &nvmetcp.ANALog{RGO: rgo}
	for i := range sub.Namespaces {
		ns := &sub.Namespaces[i]
		g := ns.group()
		j, found := slices.BinarySearchFunc(l.Groups, g, func(x nvmetcp.ANAGroup, id uint32) int {
			return cmp.Compare(x.ID, id)
		})
		if !found {
			l.Groups = slices.Insert(l.Groups, j, nvmetcp.ANAGroup{ID: g, State: anaOf(ns)})
		}
		l.Groups[j].NSIDs = append(l.Groups[j].NSIDs, ns.NSID)
	}
	return l
}

func (c *conn) features(sqe *nvmetcp.SQE) error {
	ct := c.ctrl
	set := sqe.Opcode() == opSetFeatures
	fid := uint8(sqe.CDW10())
	v := sqe.CDW11()
	s := c.s
	switch fid {
	case featNumQueues:
		s.mu.Lock()
		if set {
			if ct.nsqr != 0xFFFF {
				s.mu.Unlock()
				return c.respond(sqe, stSequence, 0, 0)
			}
			nsq, ncq := uint16(v), uint16(v>>16)
			if nsq == 0xFFFF || ncq == 0xFFFF {
				s.mu.Unlock()
				return c.respond(sqe, stInvalidField, 0, 0)
			}
			ct.nsqr = min(nsq, ncq, s.cfg.MaxIOQueues-1)
		}
		n := ct.nsqr
		if n == 0xFFFF {
			n = s.cfg.MaxIOQueues - 1
		}
		s.mu.Unlock()
		return c.respond(sqe, stOK, uint32(n)|uint32(n)<<16, 0)
	case featAEC:
		s.mu.Lock()
		if set {
			ct.aec = v
		}
		v = ct.aec
		s.mu.Unlock()
		return c.respond(sqe, stOK, v, 0)
	case featKATO:
		if set {
			s.setKATO(ct, time.Duration(v)*time.Millisecond)
			return c.respond(sqe, stOK, 0, 0)
		}
		s.mu.Lock()
		kato := ct.kato
		s.mu.Unlock()
		return c.respond(sqe, stOK, uint32(kato/time.Millisecond), 0)
	}
	return c.respond(sqe, stInvalidField, 0, 0)
}
