package host

// Alive reports whether every queue's connection is still established,
// checking the sockets themselves without waiting: a connection the target
// closed or reset (its FIN or RST received) counts as lost at once, even
// before the queue's reader has seen the end of the stream. When it is
// not, the controller is lost (Done is closed) by the time Alive returns
// false. Where the socket state cannot be read (not Linux), only losses
// already seen count.
func (c *Controller) Alive() bool {
	select {
	case <-c.done:
		return false
	default:
	}
	for _, q := range append([]*queue{c.admin}, c.ioq...) {
		if peerClosed(q.nc) {
			c.lost()
			return false
		}
	}
	return true
}
