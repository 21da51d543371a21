package agent

import (
	"maps"
	"slices"
	"strings"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/spdk"
)

// RefKind is the kind of resource a step serves or a report describes.
type RefKind string

const (
	RefNode  RefKind = "node"
	RefPD    RefKind = "pd"
	RefVD    RefKind = "vd"
	RefCntlr RefKind = "cntlr"
)

// Ref names one resource of a node's desired state: the node itself (for
// node-wide objects such as the transport, and for leftovers), a pd, a vd
// or a controller.
type Ref struct {
	Kind RefKind
	ID   string
}

// nodeRef is the node's own objects (the transport); cleanupRef the
// removal of leftovers. They are apart so that a leftover that cannot be
// removed does not stop every listener that needs the transport.
var (
	nodeRef    = Ref{Kind: RefNode}
	cleanupRef = Ref{Kind: RefNode, ID: "cleanup"}
)

func (r Ref) String() string {
	if r.Kind == RefNode {
		if r.ID != "" {
			return "node " + r.ID
		}
		return "node"
	}
	return string(r.Kind) + " " + r.ID
}

// A Step is one SPDK call of a plan, with the resource it serves. The
// executor skips a step once a step of the same resource, or of the
// resource it Needs, has failed: a vd waits for its pd, a listener for the
// node's transport.
type Step struct {
	For   Ref
	Needs Ref
	Op    spdk.Op
}

func (s Step) String() string { return s.For.String() + ": " + s.Op.String() }

// Plan is what a reconcile pass does: the steps in order, and the problems
// it found that no step can fix (a foreign object in the way, a controller
// still reconnecting), by resource. An empty plan without problems means
// SPDK is as desired.
type Plan struct {
	Steps    []Step
	Problems map[Ref][]string
}

// planner accumulates a plan over an observation.
type planner struct {
	a    *Actual
	plan Plan
	// sc, when not nil, limits the plan to the resources and leftovers it
	// names: the rest of the node converged at the last reconcile and did
	// not change since.
	sc *scope
}

func newPlanner(a *Actual) *planner {
	return &planner{a: a, plan: Plan{Problems: map[Ref][]string{}}}
}

func (p *planner) step(r Ref, op spdk.Op) { p.plan.Steps = append(p.plan.Steps, Step{For: r, Op: op}) }

func (p *planner) stepNeeds(r, needs Ref, op spdk.Op) {
	p.plan.Steps = append(p.plan.Steps, Step{For: r, Needs: needs, Op: op})
}

func (p *planner) problem(r Ref, msg string) { p.plan.Problems[r] = append(p.plan.Problems[r], msg) }

// transport creates the TCP transport every listener needs.
func (p *planner) transport() {
	if !p.a.Transports[spdk.TrtypeTCP] {
		p.step(nodeRef, spdk.OpNvmfCreateTransport(spdk.NvmfCreateTransportRequest{Trtype: spdk.TrtypeTCP}))
	}
}

// subsystem brings one subsystem to its desired shape. The namespace (nsid
// 1) exports bdev, which SPDK knows by the name or alias in nsBdev and
// reports by its canonical name; it is replaced when it exports anything
// else or under another identity. Hosts not wanted go before wanted ones
// are added, so that a fence moves without a moment where both the old
// and the new host are allowed. ana is the listener's desired ANA state,
// "" for a subsystem without ANA reporting.
func (p *planner) subsystem(r Ref, want subsystemSpec) {
	s, exists := p.a.Subsystems[want.nqn]
	if exists && (s.SerialNumber != want.serial || s.ModelNumber != want.model) {
		// Serial and model cannot change in place.
		p.step(r, spdk.OpNvmfDeleteSubsystem(want.nqn))
		exists = false
	}
	if !exists {
		s = spdk.Subsystem{}
		p.step(r, spdk.OpNvmfCreateSubsystem(spdk.NvmfCreateSubsystemRequest{
			NQN: want.nqn, SerialNumber: want.serial, ModelNumber: want.model, AnaReporting: want.ana != "",
		}))
	} else if s.AllowAnyHost {
		p.step(r, spdk.OpNvmfSubsystemAllowAnyHost(want.nqn, false))
	}

	nsOK := false
	var kept []spdk.Namespace
	for _, ns := range s.Namespaces {
		if ns.NSID == 1 && want.nsBdev != "" && ns.BdevName == want.nsBdev &&
			strings.EqualFold(ns.UUID, want.uuid) && strings.EqualFold(ns.NGUID, vda.NGUID(want.uuid)) {
			nsOK = true
			kept = append(kept, ns)
			continue
		}
		p.step(r, spdk.OpNvmfSubsystemRemoveNs(want.nqn, ns.NSID))
	}
	if !nsOK {
		p.step(r, spdk.OpNvmfSubsystemAddNs(spdk.NvmfSubsystemAddNsRequest{
			NQN: want.nqn,
			Namespace: spdk.NamespaceParams{
				BdevName: want.nsAlias, NSID: 1, UUID: want.uuid, NGUID: vda.NGUID(want.uuid),
			},
		}))
		kept = append(kept, spdk.Namespace{NSID: 1, BdevName: want.nsAlias, UUID: want.uuid, NGUID: vda.NGUID(want.uuid)})
	}
	// What follows in the plan (a controller detached once its bdev is
	// no longer exported) sees the namespaces as they will be.
	if exists {
		s.Namespaces = kept
		p.a.Subsystems[want.nqn] = s
	}

	addr := want.listener.listenAddress()
	listening := false
	for _, l := range s.ListenAddresses {
		if sameAddress(l, want.listener) {
			listening = true
			if want.ana != "" && p.a.ANA[anaKey(want.nqn, l)] != want.ana {
				p.step(r, spdk.OpNvmfSubsystemListenerSetAnaState(spdk.NvmfSubsystemListenerSetAnaStateRequest{
					NQN: want.nqn, ListenAddress: l, AnaState: want.ana,
				}))
			}
			continue
		}
		p.step(r, spdk.OpNvmfSubsystemRemoveListener(want.nqn, l))
	}
	if !listening {
		p.stepNeeds(r, nodeRef, spdk.OpNvmfSubsystemAddListener(spdk.NvmfSubsystemAddListenerRequest{
			NQN: want.nqn, ListenAddress: addr, AnaState: want.ana,
		}))
	}

	have := map[string]bool{}
	for _, h := range s.Hosts {
		have[h.NQN] = true
		if !slices.Contains(want.hosts, h.NQN) {
			p.step(r, spdk.OpNvmfSubsystemRemoveHost(want.nqn, h.NQN))
		}
	}
	for _, h := range want.hosts {
		if !have[h] {
			p.step(r, spdk.OpNvmfSubsystemAddHost(want.nqn, h))
		}
	}
}

// subsystemSpec is the desired shape of one subsystem.
type subsystemSpec struct {
	nqn, serial, model string
	// nsBdev is the canonical name of the namespace's bdev when it exists
	// now ("" when it is still to be created, which forces an add);
	// nsAlias the name to add it by.
	nsBdev, nsAlias string
	uuid            string
	listener        Listener
	ana             string
	hosts           []string
}

// sortedKeys returns a map's keys in order, so that plans are
// deterministic.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// scopedKeys lists, sorted, the keys of m a plan looks at: all of them
// without a scope, else those also in in, the scope's names of that kind.
func scopedKeys[V any](m map[string]V, sc *scope, in func(*scope) map[string]bool) []string {
	if sc == nil {
		return sortedKeys(m)
	}
	var out []string
	for k := range in(sc) {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func scopeSubsystems(s *scope) map[string]bool { return s.subsystems }
func scopeRaids(s *scope) map[string]bool      { return s.raids }
func scopeCtrlrs(s *scope) map[string]bool     { return s.ctrlrs }
func scopeBdevs(s *scope) map[string]bool      { return s.bdevs }
