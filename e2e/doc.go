// Package e2e holds VDA's end-to-end tests: the whole one-machine cluster
// (vda-cluster: portal, monitor, disk and controller nodes as real
// processes on loopback) driven as its users drive it, through vdactl and
// through the real Linux NVMe/TCP initiator in a QEMU guest
// (internal/guest). They prove that a host sees one namespace with a path
// through each controller, that its I/O survives the death of the
// primary controller's node without an application error, that the
// cluster comes back from its state directory after a full stop and a
// disk node after a restart of its data plane with the data intact, and
// that bad requests get clear errors and change nothing.
//
// The guest tests are skipped unless VDA_TEST_GUEST=1 (which CI sets):
//
//	VDA_TEST_GUEST=1 go test ./e2e
//
// See docs/e2e.md for what each test proves and the failover time
// measured.
package e2e
