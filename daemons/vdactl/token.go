package main

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// TokenCmd groups the API token commands; they need an admin token.
type TokenCmd struct {
	Create TokenCreateCmd `cmd:"" help:"Create an API token and print its secret, this once."`
	Delete TokenDeleteCmd `cmd:"" help:"Delete an API token; calls with it are refused from then on."`
	List   TokenListCmd   `cmd:"" help:"List API tokens (never their secrets)."`
}

// fmtTokenRole spells a role as the --role flag does: "read-only",
// "operator" or "admin"; "" when unspecified.
func fmtTokenRole(r vdav1.Role) string {
	if r == vdav1.Role_ROLE_UNSPECIFIED {
		return ""
	}
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_")), "_", "-")
}

// parseRole is the inverse of fmtTokenRole.
func parseRole(s string) (vdav1.Role, error) {
	for _, r := range []vdav1.Role{vdav1.Role_ROLE_READ_ONLY, vdav1.Role_ROLE_OPERATOR, vdav1.Role_ROLE_ADMIN} {
		if fmtTokenRole(r) == s {
			return r, nil
		}
	}
	return vdav1.Role_ROLE_UNSPECIFIED, fmt.Errorf("unknown role %q", s)
}

// TokenCreateCmd is vdactl token create.
type TokenCreateCmd struct {
	Name        string `arg:"" help:"Name of the new token."`
	Role        string `help:"What the token may do: read-only (Get, List, whoami), operator (also arrays and exporters) or admin (everything)." enum:"read-only,operator,admin" required:""`
	Description string `help:"Free text: who or what uses the token."`
}

// Run calls CreateToken and prints the secret, which the portal never
// shows again.
func (t *TokenCreateCmd) Run(ctx context.Context, c *Client) error {
	role, err := parseRole(t.Role)
	if err != nil {
		return err
	}
	resp, err := c.Portal.CreateToken(ctx, connect.NewRequest(&vdav1.CreateTokenRequest{
		Name: t.Name, Role: role, Description: t.Description,
	}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	fields := tokenFields(resp.Msg.GetToken())
	fields = append(fields, field{"Secret", resp.Msg.GetSecret()})
	if err := printFields(c.Stdout, fields); err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.Stdout, "\nSave the secret now: it will not be shown again.")
	return err
}

// TokenDeleteCmd is vdactl token delete.
type TokenDeleteCmd struct {
	Name string `arg:"" help:"Name of the token."`
}

// Run calls DeleteToken.
func (t *TokenDeleteCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.DeleteToken(ctx, connect.NewRequest(&vdav1.DeleteTokenRequest{Name: t.Name}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	_, err = fmt.Fprintf(c.Stdout, "token %s deleted\n", t.Name)
	return err
}

// TokenListCmd is vdactl token list.
type TokenListCmd struct {
	listFlags
}

// Run calls ListToken, page after page.
func (t *TokenListCmd) Run(ctx context.Context, c *Client) error {
	tokens, next, err := collect(ctx, c, t.listFlags, func(ctx context.Context, size uint32, token string) ([]*vdav1.Token, string, error) {
		resp, err := c.Portal.ListToken(ctx, connect.NewRequest(&vdav1.ListTokenRequest{PageSize: size, PageToken: token}))
		if err != nil {
			return nil, "", err
		}
		return resp.Msg.GetTokens(), resp.Msg.GetNextPageToken(), nil
	})
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, &vdav1.ListTokenResponse{Tokens: tokens, NextPageToken: next})
	}
	tab := newTable("NAME", "ROLE", "ID", "CREATED", "DESCRIPTION")
	for _, tok := range tokens {
		tab.add(tok.GetName(), fmtTokenRole(tok.GetRole()), tok.GetId(), fmtTime(tok.GetCreatedAtMs()), tok.GetDescription())
	}
	return tab.print(c.Stdout)
}

// WhoamiCmd is vdactl whoami.
type WhoamiCmd struct{}

// Run calls WhoAmI.
func (w *WhoamiCmd) Run(ctx context.Context, c *Client) error {
	resp, err := c.Portal.WhoAmI(ctx, connect.NewRequest(&vdav1.WhoAmIRequest{}))
	if err != nil {
		return err
	}
	if c.JSON() {
		return printJSON(c.Stdout, resp.Msg)
	}
	return printFields(c.Stdout, tokenFields(resp.Msg.GetToken()))
}

// tokenFields are the detail lines of a token.
func tokenFields(t *vdav1.Token) []field {
	return []field{
		{"Name", t.GetName()},
		{"Role", fmtTokenRole(t.GetRole())},
		{"ID", t.GetId()},
		{"Description", t.GetDescription()},
		{"Created at", fmtTime(t.GetCreatedAtMs())},
	}
}
