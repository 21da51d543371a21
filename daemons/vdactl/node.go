package main

import (
	"fmt"
	"io"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// This file holds what dn.go and cn.go share: disk nodes and controller
// nodes have the same flags and nearly the same fields.

// listenerFlags give the NVMe-oF listener of a new node.
type listenerFlags struct {
	Trtype  string `help:"NVMe-oF transport type." default:"tcp"`
	Adrfam  string `help:"Address family: ${enum}." enum:"ipv4,ipv6" default:"ipv4"`
	Traddr  string `help:"Transport address: the IP address the node listens on." required:"" placeholder:"IP"`
	Trsvcid string `help:"Transport service id: the TCP port the node listens on." required:"" placeholder:"PORT"`
}

func (l *listenerFlags) listener() *vdav1.NvmfListener {
	return &vdav1.NvmfListener{Trtype: l.Trtype, Adrfam: l.Adrfam, Traddr: l.Traddr, Trsvcid: l.Trsvcid}
}

// nodeCreateFlags are the flags of dn create and cn create.
type nodeCreateFlags struct {
	AgentAddress string `help:"host:port of the node agent's API." required:"" placeholder:"HOST:PORT"`
	listenerFlags
	Location    string  `help:"Failure domain (rack, room, zone); an array's parts are spread across locations."`
	Offline     bool    `help:"Place nothing new on the node."`
	HashCode    *uint32 `help:"Hash code 0..65535 that divides nodes between monitors (default: derived from the name)." placeholder:"N"`
	Description string  `help:"Free text."`
}

// nodeModifyFlags are the flags of dn modify and cn modify; each is sent
// only when given.
type nodeModifyFlags struct {
	Generation   *uint64 `help:"Change nothing unless the node is at this generation." placeholder:"N"`
	AgentAddress *string `help:"host:port of the node agent's API." placeholder:"HOST:PORT"`
	Trtype       *string `help:"NVMe-oF transport type."`
	Adrfam       *string `help:"Address family: ipv4 or ipv6."`
	Traddr       *string `help:"Transport address: the IP address the node listens on." placeholder:"IP"`
	Trsvcid      *string `help:"Transport service id: the TCP port the node listens on." placeholder:"PORT"`
	Location     *string `help:"Failure domain (rack, room, zone)."`
	Offline      *bool   `help:"Place nothing new on the node (--no-offline to undo)." negatable:""`
	HashCode     *uint32 `help:"Hash code 0..65535 that divides nodes between monitors." placeholder:"N"`
	Description  *string `help:"Free text."`
}

// listenerGiven reports whether any listener flag was given, and all
// whether every one was.
func (m *nodeModifyFlags) listenerGiven() (anyGiven, all bool) {
	n := 0
	for _, p := range []*string{m.Trtype, m.Adrfam, m.Traddr, m.Trsvcid} {
		if p != nil {
			n++
		}
	}
	return n > 0, n == 4
}

// mergeListener returns cur with the listener flags given laid over it.
// The portal replaces a node's listener whole, so a partial change needs
// the current one.
func (m *nodeModifyFlags) mergeListener(cur *vdav1.NvmfListener) *vdav1.NvmfListener {
	l := &vdav1.NvmfListener{
		Trtype:  cur.GetTrtype(),
		Adrfam:  cur.GetAdrfam(),
		Traddr:  cur.GetTraddr(),
		Trsvcid: cur.GetTrsvcid(),
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&l.Trtype, m.Trtype)
	set(&l.Adrfam, m.Adrfam)
	set(&l.Traddr, m.Traddr)
	set(&l.Trsvcid, m.Trsvcid)
	return l
}

// nodeView is the part of a Dn or Cn that vdactl prints.
type nodeView struct {
	id, name, agentAddress string
	listener               *vdav1.NvmfListener
	location               string
	offline                bool
	hashCode               uint32
	description            string
	generation             uint64
	status                 *vdav1.NodeStatus
	createdAtMs            int64
	countKey               string // "PDs" or "Controllers"
	count                  uint32
}

func dnView(d *vdav1.Dn) nodeView {
	return nodeView{
		id: d.GetId(), name: d.GetName(), agentAddress: d.GetAgentAddress(), listener: d.GetListener(),
		location: d.GetLocation(), offline: d.GetOffline(), hashCode: d.GetHashCode(),
		description: d.GetDescription(), generation: d.GetGeneration(), status: d.GetStatus(),
		createdAtMs: d.GetCreatedAtMs(), countKey: "PDs", count: d.GetPdCount(),
	}
}

func cnView(c *vdav1.Cn) nodeView {
	return nodeView{
		id: c.GetId(), name: c.GetName(), agentAddress: c.GetAgentAddress(), listener: c.GetListener(),
		location: c.GetLocation(), offline: c.GetOffline(), hashCode: c.GetHashCode(),
		description: c.GetDescription(), generation: c.GetGeneration(), status: c.GetStatus(),
		createdAtMs: c.GetCreatedAtMs(), countKey: "Controllers", count: c.GetCntlrCount(),
	}
}

// printNodeList prints nodes as a table whose last column is countHeader.
func printNodeList(w io.Writer, nodes []nodeView, countHeader string) error {
	t := newTable("NAME", "ADDRESS", "LISTENER", "LOCATION", "OFFLINE", "GEN", "HEALTH", countHeader)
	for _, n := range nodes {
		t.add(n.name, n.agentAddress, fmtListener(n.listener), n.location, fmtBool(n.offline),
			fmtUint(n.generation), fmtHealth(n.status.GetHealth()), fmtUint(n.count))
	}
	return t.print(w)
}

// printNode prints one node as a "key: value" block.
func printNode(w io.Writer, n nodeView) error {
	fields := []field{
		{"Name", n.name},
		{"ID", n.id},
		{"Agent address", n.agentAddress},
		{"Listener", fmtListenerLong(n.listener)},
		{"Location", n.location},
		{"Offline", fmtBool(n.offline)},
		{"Hash code", fmtUint(n.hashCode)},
		{"Description", n.description},
		{"Generation", fmtUint(n.generation)},
		{"Applied generation", fmtUint(n.status.GetAppliedGeneration())},
		{"Health", fmtHealth(n.status.GetHealth())},
	}
	if e := n.status.GetError(); e != "" {
		fields = append(fields, field{"Error", e})
	}
	fields = append(fields,
		field{"Reported at", fmtTime(n.status.GetReportedAtMs())},
		field{"Created at", fmtTime(n.createdAtMs)},
		field{n.countKey, fmtUint(n.count)},
	)
	return printFields(w, fields)
}

// eventsFlags are the flags of dn events and cn events.
type eventsFlags struct {
	Limit uint32 `help:"Show at most the N newest events (the portal's default is 100, at most 1000)." placeholder:"N"`
}

// printNodeEvents prints a node's events as a table, one line each, in
// the order given (newest first).
func printNodeEvents(w io.Writer, events []*vdav1.NodeEvent) error {
	t := newTable("TIME", "CHANGE", "MONITOR", "REASON")
	for _, e := range events {
		t.add(fmtTime(e.GetAtMs()), fmtChange(e.GetFrom(), e.GetTo()), e.GetMonitor(), e.GetReason())
	}
	return t.print(w)
}

// fmtChange spells a state change as "from → to".
func fmtChange(from, to string) string {
	return cell(from) + " → " + cell(to)
}

// syncupFlags are the flags of dn syncup and cn syncup.
type syncupFlags struct {
	Force bool `help:"Apply the desired state even if it deletes more of the node's objects at once than its agent's safety share allows."`
}

// syncupErrors is the error of a syncup whose report holds errors (the
// node's own and its resources'): the report is printed all the same, and
// the exit status says the node is not as desired. nil for a clean report.
func syncupErrors(kind, name, nodeErr string, resourceErrs ...string) error {
	n := 0
	for _, e := range append(resourceErrs, nodeErr) {
		if e != "" {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s %s: the agent reported 1 error", kind, name)
	}
	return fmt.Errorf("%s %s: the agent reported %d errors", kind, name, n)
}

// printNodeReport prints the head of a syncup's report: the generation
// applied and the node's own error.
func printNodeReport(w io.Writer, generation uint64, nodeErr string) error {
	return printFields(w, []field{{"Generation", fmtUint(generation)}, {"Error", nodeErr}})
}

// printDnReport prints a dn syncup's report: the head, a table of the pds
// and one of the vds, each with its error.
func printDnReport(w io.Writer, r *vdav1.DnReport) error {
	if err := printNodeReport(w, r.GetGeneration(), r.GetError()); err != nil {
		return err
	}
	pds := newTable("ID", "CAPACITY", "FREE", "ERROR")
	for _, pd := range r.GetPds() {
		pds.add(pd.GetId(), FormatSize(pd.GetCapacity()), FormatSize(pd.GetFree()), pd.GetError())
	}
	if err := printSection(w, "PDs", pds); err != nil {
		return err
	}
	return printSection(w, "VDs", resourceTable(r.GetVds()))
}

// printCnReport prints a cn syncup's report: the head and a table of the
// controllers, each with its error.
func printCnReport(w io.Writer, r *vdav1.CnReport) error {
	if err := printNodeReport(w, r.GetGeneration(), r.GetError()); err != nil {
		return err
	}
	return printSection(w, "Controllers", resourceTable(r.GetCntlrs()))
}

func resourceTable(rs []*vdav1.ResourceReport) *table {
	t := newTable("ID", "ERROR")
	for _, r := range rs {
		t.add(r.GetId(), r.GetError())
	}
	return t
}

// dnReportErrors lists the per-resource errors of a dn report.
func dnReportErrors(r *vdav1.DnReport) []string {
	var errs []string
	for _, pd := range r.GetPds() {
		errs = append(errs, pd.GetError())
	}
	for _, vd := range r.GetVds() {
		errs = append(errs, vd.GetError())
	}
	return errs
}

// cnReportErrors lists the per-resource errors of a cn report.
func cnReportErrors(r *vdav1.CnReport) []string {
	var errs []string
	for _, c := range r.GetCntlrs() {
		errs = append(errs, c.GetError())
	}
	return errs
}
