package spdk

import "context"

// Client is the typed surface of SPDK's JSON-RPC methods over a [Caller].
// Each method mirrors one RPC (bdev_raid_create → BdevRaidCreate) and
// returns what the Caller returns. A Client holds no state of its own and is
// safe for concurrent use when its Caller is.
type Client struct{ c Caller }

// New returns a Client that sends every call through c.
func New(c Caller) *Client { return &Client{c: c} }

// Call is the raw door: any SPDK method, params and result as the caller likes.
// It follows the [Caller] contract: params nil sends no "params" member,
// result nil discards the result.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.c.Call(ctx, method, params, result)
}
