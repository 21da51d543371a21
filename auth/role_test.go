package auth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/auth"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

func TestRoleCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		have, need auth.Role
		want       bool
	}{
		{auth.ReadOnly, auth.ReadOnly, true},
		{auth.ReadOnly, auth.Operator, false},
		{auth.ReadOnly, auth.Admin, false},
		{auth.Operator, auth.ReadOnly, true},
		{auth.Operator, auth.Operator, true},
		{auth.Operator, auth.Admin, false},
		{auth.Admin, auth.ReadOnly, true},
		{auth.Admin, auth.Operator, true},
		{auth.Admin, auth.Admin, true},
		{0, auth.ReadOnly, false},
		{auth.Admin, 0, false},
		{auth.Role(9), auth.ReadOnly, false},
		{auth.Admin, auth.Role(9), false},
	}
	for _, tt := range tests {
		t.Run(tt.have.String()+" needs "+tt.need.String(), func(t *testing.T) {
			assert.Equal(t, tt.want, tt.have.Covers(tt.need))
		})
	}
}

func TestRoleNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role  auth.Role
		name  string
		proto vdav1.Role
	}{
		{auth.ReadOnly, "read-only", vdav1.Role_ROLE_READ_ONLY},
		{auth.Operator, "operator", vdav1.Role_ROLE_OPERATOR},
		{auth.Admin, "admin", vdav1.Role_ROLE_ADMIN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.name, tt.role.String())
			assert.True(t, tt.role.Valid())
			got, err := auth.ParseRole(tt.name)
			require.NoError(t, err)
			assert.Equal(t, tt.role, got)
			assert.Equal(t, tt.proto, tt.role.Proto())
			got, err = auth.RoleOf(tt.proto)
			require.NoError(t, err)
			assert.Equal(t, tt.role, got)
		})
	}
	assert.Equal(t, "none", auth.Role(0).String())
	assert.Equal(t, vdav1.Role_ROLE_UNSPECIFIED, auth.Role(0).Proto())
	for _, s := range []string{"", "Admin", "root", "readonly", "read_only"} {
		_, err := auth.ParseRole(s)
		assert.ErrorIs(t, err, vda.ErrInvalidArgument, "%q", s)
	}
	_, err := auth.RoleOf(vdav1.Role_ROLE_UNSPECIFIED)
	assert.ErrorIs(t, err, vda.ErrInvalidArgument)
	assert.ErrorContains(t, err, "role is required")
	_, err = auth.RoleOf(vdav1.Role(42))
	assert.ErrorIs(t, err, vda.ErrInvalidArgument)
}
