// Package auth decides who may call what on the portal: a caller presents
// an API token ("Authorization: Bearer vda_<id>_<secret>"), the token
// carries a role, and a policy names the role each procedure needs.
//
// The package holds no tokens itself. An [Interceptor] asks a [Lookup] for
// the stored token of the presented id, compares hashes in constant time,
// asks a [Policy] for the role the procedure needs, and either refuses the
// call (Unauthenticated or PermissionDenied, logged at Warn without the
// secret) or puts the [Caller] in the context for the handler
// ([CallerFrom]). An unknown procedure is refused: the policy is default
// deny. See docs/security.md, "API tokens and roles".
package auth

import (
	"fmt"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// Role is what a token may do. Roles are ordered: each covers the ones
// below it. The zero Role is no role and covers nothing.
type Role uint8

const (
	// ReadOnly may call Get, List and WhoAmI.
	ReadOnly Role = iota + 1
	// Operator may also create, modify and delete arrays and exporters.
	Operator
	// Admin may call everything: nodes, pds, tokens and forced syncups.
	Admin
)

// Roles lists every role, lowest first.
var Roles = []Role{ReadOnly, Operator, Admin}

// String returns the role's name: "read-only", "operator" or "admin"
// ("none" for the zero Role).
func (r Role) String() string {
	switch r {
	case ReadOnly:
		return "read-only"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	case 0:
		return "none"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Valid says whether r is one of ReadOnly, Operator and Admin.
func (r Role) Valid() bool { return r >= ReadOnly && r <= Admin }

// Covers says whether a caller with role r may call a procedure that needs
// role need. An invalid role covers nothing and is covered by nothing.
func (r Role) Covers(need Role) bool {
	return r.Valid() && need.Valid() && r >= need
}

// Proto returns r as the API spells it (ROLE_UNSPECIFIED for an invalid
// role).
func (r Role) Proto() vdav1.Role {
	switch r {
	case ReadOnly:
		return vdav1.Role_ROLE_READ_ONLY
	case Operator:
		return vdav1.Role_ROLE_OPERATOR
	case Admin:
		return vdav1.Role_ROLE_ADMIN
	}
	return vdav1.Role_ROLE_UNSPECIFIED
}

// ParseRole parses a role's name as String returns it; anything else is
// vda.ErrInvalidArgument.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, vda.Invalidf("role %q: want read-only, operator or admin", s)
}

// RoleOf converts the API's role; ROLE_UNSPECIFIED and unknown values are
// vda.ErrInvalidArgument.
func RoleOf(p vdav1.Role) (Role, error) {
	switch p {
	case vdav1.Role_ROLE_READ_ONLY:
		return ReadOnly, nil
	case vdav1.Role_ROLE_OPERATOR:
		return Operator, nil
	case vdav1.Role_ROLE_ADMIN:
		return Admin, nil
	case vdav1.Role_ROLE_UNSPECIFIED:
		return 0, vda.Invalidf("role is required: ROLE_READ_ONLY, ROLE_OPERATOR or ROLE_ADMIN")
	}
	return 0, vda.Invalidf("role %d is not a known role", int32(p))
}
