package portal

import (
	"github.com/virtual-disk-array/vda/auth"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// policy is the role each PortalService procedure needs. A procedure
// missing here is refused to every token (a test walks the service
// descriptor so that a new RPC cannot ship without an entry).
var policy = map[string]auth.Role{
	// Reads: any token.
	vdav1connect.PortalServiceListDnProcedure:            auth.ReadOnly,
	vdav1connect.PortalServiceGetDnProcedure:             auth.ReadOnly,
	vdav1connect.PortalServiceListDnEventsProcedure:      auth.ReadOnly,
	vdav1connect.PortalServiceListPdProcedure:            auth.ReadOnly,
	vdav1connect.PortalServiceGetPdProcedure:             auth.ReadOnly,
	vdav1connect.PortalServiceListCnProcedure:            auth.ReadOnly,
	vdav1connect.PortalServiceGetCnProcedure:             auth.ReadOnly,
	vdav1connect.PortalServiceListCnEventsProcedure:      auth.ReadOnly,
	vdav1connect.PortalServiceListDaProcedure:            auth.ReadOnly,
	vdav1connect.PortalServiceGetDaProcedure:             auth.ReadOnly,
	vdav1connect.PortalServiceListExpProcedure:           auth.ReadOnly,
	vdav1connect.PortalServiceGetExpProcedure:            auth.ReadOnly,
	vdav1connect.PortalServiceGetClusterSummaryProcedure: auth.ReadOnly,
	vdav1connect.PortalServiceWhoAmIProcedure:            auth.ReadOnly,

	// Arrays and exporters: operators.
	vdav1connect.PortalServiceCreateDaProcedure:  auth.Operator,
	vdav1connect.PortalServiceDeleteDaProcedure:  auth.Operator,
	vdav1connect.PortalServiceModifyDaProcedure:  auth.Operator,
	vdav1connect.PortalServiceCreateExpProcedure: auth.Operator,
	vdav1connect.PortalServiceDeleteExpProcedure: auth.Operator,
	vdav1connect.PortalServiceModifyExpProcedure: auth.Operator,

	// Nodes, disks, tokens and forced syncups: admins.
	vdav1connect.PortalServiceCreateDnProcedure:    auth.Admin,
	vdav1connect.PortalServiceDeleteDnProcedure:    auth.Admin,
	vdav1connect.PortalServiceModifyDnProcedure:    auth.Admin,
	vdav1connect.PortalServiceCreatePdProcedure:    auth.Admin,
	vdav1connect.PortalServiceDeletePdProcedure:    auth.Admin,
	vdav1connect.PortalServiceModifyPdProcedure:    auth.Admin,
	vdav1connect.PortalServiceCreateCnProcedure:    auth.Admin,
	vdav1connect.PortalServiceDeleteCnProcedure:    auth.Admin,
	vdav1connect.PortalServiceModifyCnProcedure:    auth.Admin,
	vdav1connect.PortalServiceSyncupDnProcedure:    auth.Admin,
	vdav1connect.PortalServiceSyncupCnProcedure:    auth.Admin,
	vdav1connect.PortalServiceCreateTokenProcedure: auth.Admin,
	vdav1connect.PortalServiceDeleteTokenProcedure: auth.Admin,
	vdav1connect.PortalServiceListTokenProcedure:   auth.Admin,
}

// Policy returns the role a PortalService procedure
// ("/vda.v1.PortalService/CreateDn") needs, and false for a procedure the
// portal does not know. It is the auth.Policy NewHandler installs.
func Policy(procedure string) (auth.Role, bool) {
	r, ok := policy[procedure]
	return r, ok
}
