package portal

import (
	"fmt"
	"hash/fnv"
	"math/bits"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/store"
)

// Field rules the portal enforces before it opens a transaction. Every
// problem in a request is reported at once.

const (
	maxLocationLen = 255
	maxPathLen     = 4096
	maxHashCode    = store.HashSpace - 1
)

var pcieRE = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// checks collects validation problems.
type checks []error

func (c *checks) add(err error) {
	if err != nil {
		*c = append(*c, err)
	}
}

func (c *checks) addf(format string, args ...any) { c.add(vda.Invalidf(format, args...)) }

func (c checks) err() error {
	if len(c) == 0 {
		return nil
	}
	msgs := make([]string, len(c))
	for i, e := range c {
		msgs[i] = strings.TrimPrefix(e.Error(), vda.ErrInvalidArgument.Error()+": ")
	}
	return fmt.Errorf("%w: %s", vda.ErrInvalidArgument, strings.Join(msgs, "; "))
}

func (c *checks) name(field, v string) { c.add(vda.ValidateName(field, v)) }

func (c *checks) description(v string) { c.add(vda.ValidateDescription(v)) }

func (c *checks) location(v string) {
	if len(v) > maxLocationLen {
		c.addf("location is longer than %d bytes", maxLocationLen)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			c.addf("location %q has a control character", v)
			return
		}
	}
}

// hostRE is a DNS host name: RFC 1123 labels, and '_', which internal
// names use although DNS does not allow it.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$`)

// hostPort checks a host:port agent address: an IP address or a DNS name,
// and a port 1..65535 written plainly.
func (c *checks) hostPort(field, v string) {
	if len(v) > 255 {
		c.addf("%s is longer than 255 bytes", field)
		return
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		c.addf("%s %q: want host:port", field, v)
		return
	}
	if _, err := netip.ParseAddr(host); err != nil && !hostRE.MatchString(host) {
		c.addf("%s %q: the host is neither an IP address nor a DNS name", field, v)
	}
	if !isPort(port) {
		c.addf("%s %q: port must be 1..65535", field, v)
	}
}

// isPort says whether s is a TCP port written plainly (no sign, no leading
// zero), as SPDK and the agents will parse it.
func isPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 1 && p <= 65535 && strconv.Itoa(p) == s
}

func (c *checks) hashCode(v uint32) {
	if v > maxHashCode {
		c.addf("hash_code %d is above %d", v, maxHashCode)
	}
}

// listener checks and normalises an NVMe-oF listener.
func (c *checks) listener(l *vdav1.NvmfListener) store.Listener {
	if l == nil {
		c.addf("listener is required")
		return store.Listener{}
	}
	out := store.Listener{
		TrType:  strings.ToLower(l.GetTrtype()),
		AdrFam:  strings.ToLower(l.GetAdrfam()),
		TrAddr:  l.GetTraddr(),
		TrSvcID: l.GetTrsvcid(),
	}
	if out.TrType == "" {
		out.TrType = "tcp"
	}
	if out.TrType != "tcp" {
		c.addf("listener trtype %q: only tcp is supported", l.GetTrtype())
	}
	addr, err := netip.ParseAddr(out.TrAddr)
	switch {
	case err != nil:
		c.addf("listener traddr %q is not an IP address", out.TrAddr)
	case addr.Zone() != "":
		c.addf("listener traddr %q: an address with a zone is not reachable from other hosts", out.TrAddr)
	case addr.IsUnspecified():
		c.addf("listener traddr %q: hosts cannot connect to the unspecified address; give the node's own", out.TrAddr)
	}
	if out.AdrFam == "" && err == nil {
		out.AdrFam = "ipv4"
		if addr.Is6() {
			out.AdrFam = "ipv6"
		}
	}
	switch out.AdrFam {
	case "ipv4":
		if err == nil && !addr.Is4() {
			c.addf("listener traddr %q is not an IPv4 address", out.TrAddr)
		}
	case "ipv6":
		if err == nil && !addr.Is6() {
			c.addf("listener traddr %q is not an IPv6 address", out.TrAddr)
		}
	case "":
		// traddr is not an address; that is the one problem to report.
	default:
		c.addf("listener adrfam %q: want ipv4 or ipv6", l.GetAdrfam())
	}
	if !isPort(out.TrSvcID) {
		c.addf("listener trsvcid %q: want a port 1..65535", out.TrSvcID)
	}
	return out
}

// maxIDLen bounds an id a request names; VDA's own ids are far shorter.
const maxIDLen = 64

// cntlrID checks the form of a controller id a request names; whether it
// names a controller is for the transaction to say.
func (c *checks) cntlrID(field, v string) {
	switch {
	case v == "":
		c.addf("%s is empty", field)
	case len(v) > maxIDLen:
		c.addf("%s is longer than %d bytes", field, maxIDLen)
	case strings.IndexFunc(v, func(r rune) bool { return r <= 0x20 || r == 0x7f }) >= 0:
		c.addf("%s %q has a space or control character", field, v)
	}
}

// generation checks a caller's generation precondition.
func checkGeneration(what string, want *uint64, have uint64) error {
	if want != nil && *want != have {
		return fmt.Errorf("%s is at generation %d, not %d: %w", what, have, *want, vda.ErrStaleGeneration)
	}
	return nil
}

// defaultHashCode spreads nodes over 0..65535 by name.
func defaultHashCode(name string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return h.Sum32() % (maxHashCode + 1)
}

// pdBackend checks a pd's backend and returns it as the store spells it.
func (c *checks) pdBackend(malloc *vdav1.PdMalloc, aio *vdav1.PdAio, nvme *vdav1.PdNvme) (kind store.PDKind, size uint64, file, pcie string) {
	switch {
	case malloc != nil:
		size = malloc.GetSize()
		switch {
		case size == 0:
			c.addf("malloc size is 0")
		case size%vda.MiB != 0:
			c.addf("malloc size %d is not a multiple of 1 MiB", size)
		case size > vda.MaxArraySize:
			c.addf("malloc size %d is above %d", size, uint64(vda.MaxArraySize))
		case vda.EstimatedLvstoreCapacity(size) == 0:
			c.addf("malloc size %s leaves no room for an lvstore (at least %s)", vda.FormatSize(size), vda.FormatSize(2*vda.ClusterSize))
		}
		return store.PDMalloc, size, "", ""
	case aio != nil:
		file = aio.GetPath()
		switch {
		case file == "":
			c.addf("aio path is empty")
		case len(file) > maxPathLen:
			c.addf("aio path is longer than %d bytes", maxPathLen)
		case !strings.HasPrefix(file, "/") || path.Clean(file) != file:
			c.addf("aio path %q: want a clean absolute path", file)
		case strings.ContainsAny(file, "\x00\n"):
			c.addf("aio path has a NUL or newline")
		}
		return store.PDAio, 0, file, ""
	case nvme != nil:
		pcie = strings.ToLower(nvme.GetPcieAddr())
		if !pcieRE.MatchString(pcie) {
			c.addf("nvme pcie_addr %q: want dddd:bb:dd.f", nvme.GetPcieAddr())
		}
		return store.PDNvme, 0, "", pcie
	}
	c.addf("a backend is required: malloc, aio or nvme")
	return "", 0, "", ""
}

// raid0 checks a RAID0 layout and applies its defaults.
func (c *checks) raid0(r *vdav1.Raid0) (vdCount, stripKB uint32) {
	if r == nil {
		return 1, vda.DefaultStripSizeKB
	}
	vdCount, stripKB = r.GetVdCount(), r.GetStripSizeKb()
	if vdCount == 0 {
		vdCount = 1
	}
	if vdCount > vda.MaxVDCount {
		c.addf("raid0 vd_count %d is above %d", vdCount, vda.MaxVDCount)
	}
	if stripKB == 0 {
		stripKB = vda.DefaultStripSizeKB
	}
	if stripKB < 4 || stripKB > 1024 || bits.OnesCount32(stripKB) != 1 {
		c.addf("raid0 strip_size_kb %d: want a power of two from 4 to 1024", stripKB)
	}
	return vdCount, stripKB
}

func (c *checks) arraySize(size uint64) {
	switch {
	case size == 0:
		c.addf("size is 0")
	case size%vda.BlockSize != 0:
		c.addf("size %d is not a multiple of %d", size, vda.BlockSize)
	case size > vda.MaxArraySize:
		c.addf("size %d is above the 1 PiB limit", size)
	}
}

func (c *checks) cntlrCount(n uint32) uint32 {
	if n == 0 {
		return 1
	}
	if n > vda.MaxCntlrCount {
		c.addf("cntlr_count %d is above %d", n, vda.MaxCntlrCount)
	}
	return n
}
