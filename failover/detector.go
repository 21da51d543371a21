package failover

import (
	"errors"
	"fmt"
	"time"

	"github.com/virtual-disk-array/vda"
)

// State is what the detector concludes of a node from its heartbeats.
type State string

const (
	// Unknown: no heartbeat answered or missed yet.
	Unknown State = "unknown"
	// Alive: the last heartbeat was answered.
	Alive State = "alive"
	// Suspect: heartbeats were missed, not yet enough to fail the node.
	Suspect State = "suspect"
	// Failed: enough heartbeats were missed; the node's controllers fail
	// over. A failed node stays failed until it answers with its current
	// generation applied.
	Failed State = "failed"
)

// Config sets when a node is declared failed.
type Config struct {
	// Misses is how many consecutive heartbeats a node may miss before it
	// is failed; at least 2, so that no single lost answer fails a node.
	// 0 means 3.
	Misses int
	// Deadline, if positive, fails a node once this long has passed since
	// its last answer, whichever of Misses and Deadline comes first, and
	// only after two misses at least. 0 means no deadline.
	Deadline time.Duration
}

func (c Config) withDefaults() Config {
	if c.Misses == 0 {
		c.Misses = 3
	}
	return c
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Misses != 0 && c.Misses < 2 {
		errs = append(errs, fmt.Errorf("failover: Misses is %d; at least 2, so that one lost answer fails no node", c.Misses))
	}
	if c.Deadline < 0 {
		errs = append(errs, errors.New("failover: Deadline is negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", vda.ErrInvalidArgument, err)
	}
	return nil
}

// Beat is the outcome of one heartbeat of one node.
type Beat struct {
	At time.Time
	// Answered: the agent answered and its SPDK application is reachable.
	// An agent that answers without SPDK serves nothing: that is a miss.
	Answered bool
	// Why says what went wrong when not Answered.
	Why string
	// Applied is the generation the agent reports applied; Generation the
	// node's generation in the store when the heartbeat was sent.
	Applied, Generation uint64
	// Missing says that SPDK lost objects the agent built (its report
	// names some); the node must be resynced.
	Missing bool
}

// Verdict is what one heartbeat changed.
type Verdict struct {
	From, To State
	// Reason says why, for the node's event log. It is empty when nothing
	// changed, but for a failed node that answers again before it applied
	// its current generation: it stays failed, and Reason says so.
	Reason string
	// Resync says the node must get its whole desired state again now: its
	// agent or SPDK restarted (applied generation went back, objects gone).
	Resync bool
}

// Changed says whether the node's state changed.
func (v Verdict) Changed() bool { return v.From != v.To }

// Node tracks one node's heartbeats. Its zero value is a node never heard
// of. It is not safe for concurrent use; a monitor keeps one per node.
type Node struct {
	State     State
	misses    int
	lastOK    time.Time
	firstMiss time.Time
	applied   uint64
}

// Detector applies a Config to nodes' heartbeats. It is pure: it keeps no
// state of its own, so that a monitor that takes over a node can seed it
// from the store.
type Detector struct{ cfg Config }

// NewDetector validates cfg and returns a detector.
func NewDetector(cfg Config) (Detector, error) {
	if err := cfg.Validate(); err != nil {
		return Detector{}, err
	}
	return Detector{cfg.withDefaults()}, nil
}

// Observe folds one heartbeat into n and says what changed.
func (d Detector) Observe(n *Node, b Beat) Verdict {
	d.cfg = d.cfg.withDefaults() // a zero Detector must not fail on one miss
	if n.State == "" {
		n.State = Unknown
	}
	v := Verdict{From: n.State, To: n.State}
	if b.Answered {
		if n.applied > b.Applied || b.Missing {
			v.Resync = true
		}
		n.applied = b.Applied
		n.misses, n.lastOK, n.firstMiss = 0, b.At, time.Time{}
		switch {
		case n.State == Failed && b.Applied < b.Generation:
			// Back, but not yet what the store says it holds now.
			v.Reason = fmt.Sprintf("answers again; applied generation %d of %d", b.Applied, b.Generation)
			return v
		case n.State == Failed:
			v.Reason = fmt.Sprintf("answers again with generation %d applied", b.Applied)
		case n.State == Suspect:
			v.Reason = "answers again"
		case n.State == Unknown:
			v.Reason = "answers"
		}
		n.State, v.To = Alive, Alive
		if !v.Changed() {
			v.Reason = ""
		}
		return v
	}
	n.misses++
	if n.misses == 1 {
		n.firstMiss = b.At
	}
	if n.State == Failed {
		return v
	}
	since := n.lastOK
	if since.IsZero() {
		since = n.firstMiss
	}
	silent := b.At.Sub(since)
	switch {
	case n.misses >= d.cfg.Misses:
		v.To = Failed
		v.Reason = fmt.Sprintf("%d heartbeats missed in a row (%s); last: %s", n.misses, silent.Round(time.Millisecond), b.Why)
	case d.cfg.Deadline > 0 && n.misses >= 2 && silent >= d.cfg.Deadline:
		v.To = Failed
		v.Reason = fmt.Sprintf("no answer for %s, past the %s deadline; last: %s", silent.Round(time.Millisecond), d.cfg.Deadline, b.Why)
	case n.State != Suspect:
		v.To = Suspect
		v.Reason = "heartbeat missed: " + b.Why
	}
	n.State = v.To
	return v
}

// Seed sets n from what the store says of a node, for a monitor that
// takes it over: a node the store holds failed stays failed until it
// answers with its generation applied.
func Seed(failed bool, applied uint64) Node {
	if failed {
		return Node{State: Failed, applied: applied}
	}
	return Node{State: Unknown, applied: applied}
}
