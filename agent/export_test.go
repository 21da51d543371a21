package agent

// AlwaysScope makes every reconcile of a changed generation observe only
// what changed, however small the node: the tests' nodes are too small for
// the agent to choose it on its own.
func (c *core) AlwaysScope() { c.alwaysScope = true }
