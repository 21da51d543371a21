package failover_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/failover"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  failover.Config
		want []string // substrings of the error; none means valid
	}{
		{name: "zero value is valid (defaults)", cfg: failover.Config{}},
		{name: "two misses is the least", cfg: failover.Config{Misses: 2}},
		{name: "a positive deadline", cfg: failover.Config{Misses: 5, Deadline: 10 * time.Second}},
		{name: "one miss is refused", cfg: failover.Config{Misses: 1}, want: []string{"Misses is 1", "at least 2"}},
		{name: "negative misses are refused", cfg: failover.Config{Misses: -1}, want: []string{"Misses is -1"}},
		{name: "negative deadline is refused", cfg: failover.Config{Deadline: -time.Second}, want: []string{"Deadline is negative"}},
		{
			name: "every problem is reported",
			cfg:  failover.Config{Misses: 1, Deadline: -1},
			want: []string{"Misses is 1", "Deadline is negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			_, nerr := failover.NewDetector(tt.cfg)
			if len(tt.want) == 0 {
				assert.NoError(t, err)
				assert.NoError(t, nerr)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, vda.ErrInvalidArgument)
			for _, s := range tt.want {
				assert.Contains(t, err.Error(), s)
			}
			require.Error(t, nerr, "NewDetector must refuse what Validate refuses")
			assert.ErrorIs(t, nerr, vda.ErrInvalidArgument)
		})
	}
}

var t0 = time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)

// step is one heartbeat and what it must change.
type step struct {
	beat failover.Beat
	from failover.State
	to   failover.State
	// reason: substrings the verdict's reason must contain; none means it
	// must be empty.
	reason []string
	resync bool
}

// ok is a heartbeat answered at t0+at with applied of gen applied.
func ok(at time.Duration, applied, gen uint64) failover.Beat {
	return failover.Beat{At: t0.Add(at), Answered: true, Applied: applied, Generation: gen}
}

// miss is a heartbeat not answered at t0+at.
func miss(at time.Duration, why string) failover.Beat {
	return failover.Beat{At: t0.Add(at), Why: why}
}

// missing is a heartbeat whose answer says SPDK lost objects.
func missing(at time.Duration, applied, gen uint64) failover.Beat {
	b := ok(at, applied, gen)
	b.Missing = true
	return b
}

func TestDetectorObserve(t *testing.T) {
	t.Parallel()
	const s = time.Second
	const (
		unknown = failover.Unknown
		alive   = failover.Alive
		suspect = failover.Suspect
		failed  = failover.Failed
	)
	tests := []struct {
		name  string
		cfg   failover.Config
		node  failover.Node
		steps []step
	}{
		{
			name: "unknown node that answers is alive",
			steps: []step{
				{beat: ok(0, 1, 1), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: ok(s, 1, 1), from: alive, to: alive},
			},
		},
		{
			name: "unknown node that misses is suspect, then failed",
			steps: []step{
				{beat: miss(0, "connection refused"), from: unknown, to: suspect, reason: []string{"heartbeat missed: connection refused"}},
				{beat: miss(s, "connection refused"), from: suspect, to: suspect},
				{beat: miss(2*s, "connection refused"), from: suspect, to: failed, reason: []string{"3 heartbeats missed in a row", "(2s)", "last: connection refused"}},
			},
		},
		{
			name: "a single miss never fails a node",
			cfg:  failover.Config{Misses: 2},
			steps: []step{
				{beat: ok(0, 1, 1), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed: timeout"}},
				{beat: ok(2*s, 1, 1), from: suspect, to: alive, reason: []string{"answers again"}},
				{beat: miss(3*s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed: timeout"}},
			},
		},
		{
			name: "default: three misses in a row fail",
			steps: []step{
				{beat: ok(0, 1, 1), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed: timeout"}},
				{beat: miss(2*s, "timeout"), from: suspect, to: suspect},
				{beat: miss(3*s, "spdk unreachable"), from: suspect, to: failed, reason: []string{"3 heartbeats missed in a row", "(3s)", "last: spdk unreachable"}},
			},
		},
		{
			name: "Misses 2: two misses in a row fail",
			cfg:  failover.Config{Misses: 2},
			steps: []step{
				{beat: ok(0, 1, 1), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(1500*time.Millisecond, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed: timeout"}},
				{beat: miss(3*s, "timeout"), from: suspect, to: failed, reason: []string{"2 heartbeats missed in a row", "(3s)"}},
			},
		},
		{
			name: "an answer in between resets the count",
			steps: []step{
				{beat: ok(0, 1, 1), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed"}},
				{beat: miss(2*s, "timeout"), from: suspect, to: suspect},
				{beat: ok(3*s, 1, 1), from: suspect, to: alive, reason: []string{"answers again"}},
				{beat: miss(4*s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed"}},
				{beat: miss(5*s, "timeout"), from: suspect, to: suspect},
				// Silence counts from the answer at 3s, not from t0.
				{beat: miss(6*s, "timeout"), from: suspect, to: failed, reason: []string{"3 heartbeats missed in a row", "(3s)"}},
			},
		},
		{
			name: "deadline fails after two misses once the silence reaches it",
			cfg:  failover.Config{Misses: 5, Deadline: 10 * s},
			steps: []step{
				{beat: ok(0, 1, 1), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(4*s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed"}},
				{beat: miss(9*s, "timeout"), from: suspect, to: suspect},
				{beat: miss(10*s, "timeout"), from: suspect, to: failed, reason: []string{"no answer for 10s", "past the 10s deadline", "last: timeout"}},
			},
		},
		{
			name: "deadline never fails on one miss, even far past it",
			cfg:  failover.Config{Misses: 5, Deadline: 10 * s},
			steps: []step{
				{beat: ok(0, 1, 1), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(60*s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed: timeout"}},
				{beat: miss(61*s, "timeout"), from: suspect, to: failed, reason: []string{"no answer for 1m1s", "past the 10s deadline"}},
			},
		},
		{
			name: "deadline counts from the answer, reset by it",
			cfg:  failover.Config{Misses: 5, Deadline: 10 * s},
			steps: []step{
				{beat: ok(0, 1, 1), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(8*s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed"}},
				{beat: ok(9*s, 1, 1), from: suspect, to: alive, reason: []string{"answers again"}},
				{beat: miss(12*s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed"}},
				{beat: miss(18*s, "timeout"), from: suspect, to: suspect},
				{beat: miss(19*s, "timeout"), from: suspect, to: failed, reason: []string{"no answer for 10s", "past the 10s deadline"}},
			},
		},
		{
			name: "never answered: deadline counts from the first miss",
			cfg:  failover.Config{Misses: 5, Deadline: 10 * s},
			steps: []step{
				{beat: miss(0, "no route"), from: unknown, to: suspect, reason: []string{"heartbeat missed: no route"}},
				{beat: miss(9*s, "no route"), from: suspect, to: suspect},
				{beat: miss(10*s, "no route"), from: suspect, to: failed, reason: []string{"no answer for 10s", "last: no route"}},
			},
		},
		{
			name: "failed node behind its generation stays failed until it applies it",
			cfg:  failover.Config{Misses: 2},
			steps: []step{
				{beat: ok(0, 4, 4), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed"}},
				{beat: miss(2*s, "timeout"), from: suspect, to: failed, reason: []string{"2 heartbeats missed in a row"}},
				{beat: ok(3*s, 4, 5), from: failed, to: failed, reason: []string{"applied generation 4 of 5"}},
				{beat: ok(4*s, 4, 5), from: failed, to: failed, reason: []string{"applied generation 4 of 5"}},
				{beat: ok(5*s, 5, 5), from: failed, to: alive, reason: []string{"answers again with generation 5 applied"}},
			},
		},
		{
			name: "misses while failed keep it failed with no change",
			cfg:  failover.Config{Misses: 2, Deadline: 5 * s},
			steps: []step{
				{beat: ok(0, 2, 2), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed"}},
				{beat: miss(2*s, "timeout"), from: suspect, to: failed, reason: []string{"2 heartbeats missed"}},
				{beat: miss(3*s, "timeout"), from: failed, to: failed},
				{beat: miss(60*s, "timeout"), from: failed, to: failed},
				{beat: miss(600*s, "timeout"), from: failed, to: failed},
				{beat: ok(601*s, 2, 2), from: failed, to: alive, reason: []string{"answers again with generation 2 applied"}},
			},
		},
		{
			name: "applied generation going back (agent restart) resyncs",
			steps: []step{
				{beat: ok(0, 7, 7), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: ok(s, 0, 7), from: alive, to: alive, resync: true},
				// Moving forward again is not a restart.
				{beat: ok(2*s, 7, 7), from: alive, to: alive},
				{beat: ok(3*s, 8, 8), from: alive, to: alive},
				{beat: ok(4*s, 6, 8), from: alive, to: alive, resync: true},
			},
		},
		{
			name: "a restart seen after misses resyncs as the node comes back",
			steps: []step{
				{beat: ok(0, 3, 3), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: miss(s, "timeout"), from: alive, to: suspect, reason: []string{"heartbeat missed"}},
				{beat: ok(2*s, 0, 3), from: suspect, to: alive, reason: []string{"answers again"}, resync: true},
			},
		},
		{
			name: "missing objects resync",
			steps: []step{
				{beat: ok(0, 3, 3), from: unknown, to: alive, reason: []string{"answers"}},
				{beat: missing(s, 3, 3), from: alive, to: alive, resync: true},
				{beat: ok(2*s, 3, 3), from: alive, to: alive},
			},
		},
		{
			name: "seeded failed: starts failed, misses change nothing",
			node: failover.Seed(true, 5),
			steps: []step{
				{beat: miss(0, "timeout"), from: failed, to: failed},
				{beat: miss(s, "timeout"), from: failed, to: failed},
				{beat: miss(2*s, "timeout"), from: failed, to: failed},
				{beat: miss(3*s, "timeout"), from: failed, to: failed},
			},
		},
		{
			name: "seeded failed: restarted agent stays failed and resyncs",
			node: failover.Seed(true, 5),
			steps: []step{
				{beat: ok(0, 0, 6), from: failed, to: failed, reason: []string{"applied generation 0 of 6"}, resync: true},
				{beat: ok(s, 6, 6), from: failed, to: alive, reason: []string{"answers again with generation 6 applied"}},
			},
		},
		{
			name: "seeded failed: answer with the generation applied is alive",
			node: failover.Seed(true, 5),
			steps: []step{
				{beat: ok(0, 5, 5), from: failed, to: alive, reason: []string{"answers again with generation 5 applied"}},
			},
		},
		{
			name: "seeded healthy: unknown, resync if applied went back",
			node: failover.Seed(false, 5),
			steps: []step{
				{beat: ok(0, 2, 5), from: unknown, to: alive, reason: []string{"answers"}, resync: true},
			},
		},
		{
			name: "seeded healthy: same applied generation, no resync",
			node: failover.Seed(false, 5),
			steps: []step{
				{beat: ok(0, 5, 5), from: unknown, to: alive, reason: []string{"answers"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := failover.NewDetector(tt.cfg)
			require.NoError(t, err)
			n := tt.node
			for i, st := range tt.steps {
				v := d.Observe(&n, st.beat)
				assert.Equal(t, st.from, v.From, "step %d: From", i)
				assert.Equal(t, st.to, v.To, "step %d: To", i)
				assert.Equal(t, st.from != st.to, v.Changed(), "step %d: Changed", i)
				assert.Equal(t, st.to, n.State, "step %d: node state", i)
				assert.Equal(t, st.resync, v.Resync, "step %d: Resync", i)
				if len(st.reason) == 0 {
					assert.Empty(t, v.Reason, "step %d: Reason", i)
				}
				for _, r := range st.reason {
					assert.Contains(t, v.Reason, r, "step %d: Reason", i)
				}
			}
		})
	}
}

func TestFirstAnswerReason(t *testing.T) {
	t.Parallel()
	d, err := failover.NewDetector(failover.Config{})
	require.NoError(t, err)
	var n failover.Node
	v := d.Observe(&n, ok(0, 1, 1))
	assert.Equal(t, failover.Verdict{From: failover.Unknown, To: failover.Alive, Reason: "answers"}, v)
}

func TestSeed(t *testing.T) {
	t.Parallel()
	assert.Equal(t, failover.Failed, failover.Seed(true, 3).State)
	assert.Equal(t, failover.Unknown, failover.Seed(false, 3).State)
}

// TestZeroDetector: a Detector not made by NewDetector still fails no node
// on one miss; it takes the default three.
func TestZeroDetector(t *testing.T) {
	var d failover.Detector
	var n failover.Node
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, want := range []failover.State{failover.Suspect, failover.Suspect, failover.Failed} {
		v := d.Observe(&n, failover.Beat{At: t0.Add(time.Duration(i) * time.Second), Why: "timeout"})
		assert.Equal(t, want, v.To, "miss %d", i+1)
	}
}
