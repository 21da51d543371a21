package spdk

import "context"

// This file holds the application-level methods a client asks before
// anything else: the version, the end of initialization, the method list.

// Version is the answer of spdk_get_version.
type Version struct {
	Version string        `json:"version"` // "SPDK v26.05"
	Fields  VersionFields `json:"fields"`
}

// VersionFields are the numeric parts of a Version.
type VersionFields struct {
	Major  int    `json:"major"`
	Minor  int    `json:"minor"`
	Patch  int    `json:"patch"`
	Suffix string `json:"suffix"`
}

// SpdkGetVersion asks for the application's version. It sends no params:
// SPDK rejects any params object, even {}, for this method.
func (c *Client) SpdkGetVersion(ctx context.Context) (Version, error) {
	var v Version
	err := c.Call(ctx, "spdk_get_version", nil, &v)
	return v, err
}

// FrameworkWaitInit returns once the application has finished its
// initialization (at once on a running application).
func (c *Client) FrameworkWaitInit(ctx context.Context) error {
	return c.Call(ctx, "framework_wait_init", nil, nil)
}

// RPCGetMethodsRequest holds the options of rpc_get_methods.
type RPCGetMethodsRequest struct {
	// Current lists only the methods allowed in the current state.
	Current bool `json:"current,omitempty"`
	// IncludeAliases also lists deprecated method aliases.
	IncludeAliases bool `json:"include_aliases,omitempty"`
}

// RPCGetMethods lists the method names the application serves.
func (c *Client) RPCGetMethods(ctx context.Context, req RPCGetMethodsRequest) ([]string, error) {
	var names []string
	var params any
	if req != (RPCGetMethodsRequest{}) {
		params = req
	}
	err := c.Call(ctx, "rpc_get_methods", params, &names)
	return names, err
}
