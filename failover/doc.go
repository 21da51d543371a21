// Package failover decides when a node has failed, from its heartbeats, and
// what an array becomes once its primary's cn is unusable: which controller
// is primary from now on and where controllers stranded on unusable cns go.
//
// It is pure: no clock, no store, no I/O, and no state beyond what the caller
// hands in. Heartbeat times and the store's facts come from the monitor, so
// a monitor that takes a node over from another can seed it from the store
// and reach the same verdicts, and every decision replays exactly in a test.
//
// It leans towards not failing: one lost answer never fails a node, and a
// failed node comes back only once it has applied the generation the store
// holds, so that a flapping or freshly restarted node is not handed a primary
// it does not serve yet. Re-homed controllers are placed by the allocator so
// that failover and array creation agree on where controllers belong.
package failover
