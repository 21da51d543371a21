package spdk

import (
	"context"
	"encoding/json"
)

// An Op is one state-changing JSON-RPC call held as a value: what a planner
// (agent.Plan) returns and an executor runs, and what a test or a log
// prints. Params is the same value the typed method would send, so an Op
// and the typed call put the same bytes on the wire.
type Op struct {
	Method string
	Params any
}

// String renders the op as the method and its compact JSON params.
func (o Op) String() string {
	if o.Params == nil {
		return o.Method
	}
	b, err := json.Marshal(o.Params)
	if err != nil {
		return o.Method + " <" + err.Error() + ">"
	}
	return o.Method + " " + string(b)
}

// Do runs op and discards its result.
func (c *Client) Do(ctx context.Context, op Op) error {
	return c.Call(ctx, op.Method, op.Params, nil)
}

// Constructors of the ops VDA's reconcilers plan, one per method, with the
// parameters of the typed method of the same name.

func OpNvmfCreateTransport(req NvmfCreateTransportRequest) Op {
	return Op{"nvmf_create_transport", req}
}

func OpBdevMallocCreate(req BdevMallocCreateRequest) Op { return Op{"bdev_malloc_create", req} }
func OpBdevMallocDelete(name string) Op                 { return Op{"bdev_malloc_delete", nameParams{name}} }
func OpBdevAioCreate(req BdevAioCreateRequest) Op       { return Op{"bdev_aio_create", req} }
func OpBdevAioDelete(name string) Op                    { return Op{"bdev_aio_delete", nameParams{name}} }
func OpBdevWaitForExamine() Op                          { return Op{"bdev_wait_for_examine", nil} }

func OpBdevNvmeAttachController(req BdevNvmeAttachControllerRequest) Op {
	return Op{"bdev_nvme_attach_controller", req}
}

func OpBdevNvmeDetachController(req BdevNvmeDetachControllerRequest) Op {
	return Op{"bdev_nvme_detach_controller", req}
}

func OpBdevLvolCreateLvstore(req BdevLvolCreateLvstoreRequest) Op {
	return Op{"bdev_lvol_create_lvstore", req}
}

func OpBdevLvolDeleteLvstore(sel LvstoreSelector) Op { return Op{"bdev_lvol_delete_lvstore", sel} }
func OpBdevLvolCreate(req BdevLvolCreateRequest) Op  { return Op{"bdev_lvol_create", req} }
func OpBdevLvolResize(req BdevLvolResizeRequest) Op  { return Op{"bdev_lvol_resize", req} }
func OpBdevLvolDelete(name string) Op                { return Op{"bdev_lvol_delete", nameParams{name}} }
func OpBdevRaidCreate(req BdevRaidCreateRequest) Op  { return Op{"bdev_raid_create", req} }
func OpBdevRaidDelete(name string) Op                { return Op{"bdev_raid_delete", nameParams{name}} }

func OpNvmfCreateSubsystem(req NvmfCreateSubsystemRequest) Op {
	return Op{"nvmf_create_subsystem", req}
}

func OpNvmfDeleteSubsystem(nqn string) Op { return Op{"nvmf_delete_subsystem", nqnParams{nqn}} }

func OpNvmfSubsystemAllowAnyHost(nqn string, allow bool) Op {
	return Op{"nvmf_subsystem_allow_any_host", allowAnyHostParams{nqn, allow}}
}

func OpNvmfSubsystemAddNs(req NvmfSubsystemAddNsRequest) Op {
	return Op{"nvmf_subsystem_add_ns", req}
}

func OpNvmfSubsystemRemoveNs(nqn string, nsid uint32) Op {
	return Op{"nvmf_subsystem_remove_ns", removeNsParams{nqn, nsid}}
}

func OpNvmfSubsystemAddListener(req NvmfSubsystemAddListenerRequest) Op {
	return Op{"nvmf_subsystem_add_listener", req}
}

func OpNvmfSubsystemRemoveListener(nqn string, addr ListenAddress) Op {
	return Op{"nvmf_subsystem_remove_listener", listenerParams{nqn, addr}}
}

func OpNvmfSubsystemListenerSetAnaState(req NvmfSubsystemListenerSetAnaStateRequest) Op {
	return Op{"nvmf_subsystem_listener_set_ana_state", req}
}

func OpNvmfSubsystemAddHost(nqn, host string) Op {
	return Op{"nvmf_subsystem_add_host", hostParams{NQN: nqn, Host: host}}
}

func OpNvmfSubsystemRemoveHost(nqn, host string) Op {
	return Op{"nvmf_subsystem_remove_host", hostParams{NQN: nqn, Host: host}}
}

type allowAnyHostParams struct {
	NQN          string `json:"nqn"`
	AllowAnyHost bool   `json:"allow_any_host"`
}

type removeNsParams struct {
	NQN  string `json:"nqn"`
	NSID uint32 `json:"nsid"`
}

type listenerParams struct {
	NQN           string        `json:"nqn"`
	ListenAddress ListenAddress `json:"listen_address"`
}

// Subject names the object op acts on, as its params name it: the bdev of
// a bdev op ("lvs/lvol" for bdev_lvol_create), the controller of an NVMe
// op, the lvstore of an lvstore op, the subsystem NQN of an nvmf op. It is
// "" for an op that names no object (nvmf_create_transport,
// bdev_wait_for_examine) or whose params are not one of this package's
// request types. A reconciler uses it to know which objects its steps
// changed.
func (o Op) Subject() string {
	switch p := o.Params.(type) {
	case nameParams:
		return p.Name
	case nqnParams:
		return p.NQN
	case BdevMallocCreateRequest:
		return p.Name
	case BdevAioCreateRequest:
		return p.Name
	case BdevNvmeAttachControllerRequest:
		return p.Name
	case BdevNvmeDetachControllerRequest:
		return p.Name
	case BdevLvolCreateLvstoreRequest:
		return p.LvsName
	case LvstoreSelector:
		if p.LvsName != "" {
			return p.LvsName
		}
		return p.UUID
	case BdevLvolCreateRequest:
		if p.LvsName != "" {
			return p.LvsName + "/" + p.LvolName
		}
		return p.UUID + "/" + p.LvolName
	case BdevLvolResizeRequest:
		return p.Name
	case BdevRaidCreateRequest:
		return p.Name
	case NvmfCreateSubsystemRequest:
		return p.NQN
	case allowAnyHostParams:
		return p.NQN
	case NvmfSubsystemAddNsRequest:
		return p.NQN
	case removeNsParams:
		return p.NQN
	case NvmfSubsystemAddListenerRequest:
		return p.NQN
	case listenerParams:
		return p.NQN
	case NvmfSubsystemListenerSetAnaStateRequest:
		return p.NQN
	case hostParams:
		return p.NQN
	}
	return ""
}
