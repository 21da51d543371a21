package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/virtual-disk-array/vda/spdk"
)

// Decode errors: SPDK's modules report a failed spdk_json_decode_object
// each with its own code, and this is the one thing a client can see.
var (
	// bdev core, malloc, null, aio, lvol, bdev_nvme, iostat.
	decodeInternal = decodeStyle{code: -32603, msg: "spdk_json_decode_object failed"}
	// nvmf_* and rpc_get_methods.
	decodeInvalidParams = decodeStyle{code: -32602, msg: "Invalid parameters"}
	// bdev_raid_*: a decode error reported with the parse-error code.
	decodeParseCode = decodeStyle{code: -32700, msg: "spdk_json_decode_object failed"}
)

type decodeStyle struct {
	code int
	msg  string
}

// request is one call being served: the method, its raw params and the
// way its module reports errors.
type request struct {
	method string
	params json.RawMessage
	style  decodeStyle
}

// err returns the error object SPDK sends with code and message.
func (r *request) err(code int, msg string) error {
	return spdk.NewError(r.method, code, msg)
}

// errno returns a negative errno with strerror's text, SPDK's most common
// error object.
func (r *request) errno(code int) error {
	return spdk.NewError(r.method, code, strerror(code))
}

// errf is err with a formatted message.
func (r *request) errf(code int, format string, args ...any) error {
	return spdk.NewError(r.method, code, fmt.Sprintf(format, args...))
}

// decodeErr is the module's decode-failure error object.
func (r *request) decodeErr() error {
	return spdk.NewError(r.method, r.style.code, r.style.msg)
}

// strerror is glibc's text for the errno values SPDK reports.
func strerror(code int) string {
	if code < 0 {
		code = -code
	}
	switch code {
	case 1:
		return "Operation not permitted"
	case 2:
		return "No such file or directory"
	case 5:
		return "Input/output error"
	case 6:
		return "No such device or address"
	case 11:
		return "Resource temporarily unavailable"
	case 12:
		return "Cannot allocate memory"
	case 16:
		return "Device or resource busy"
	case 17:
		return "File exists"
	case 19:
		return "No such device"
	case 22:
		return "Invalid argument"
	case 28:
		return "No space left on device"
	case 95:
		return "Operation not supported"
	case 110:
		return "Connection timed out"
	case 114:
		return "Operation already in progress"
	}
	return fmt.Sprintf("Unknown error %d", code)
}

// errno values used by the model.
const (
	ePERM     = -1
	eNOENT    = -2
	eIO       = -5
	eNXIO     = -6
	eAGAIN    = -11
	eEXIST    = -17
	eNODEV    = -19
	eINVAL    = -22
	eNOSPC    = -28
	eTIMEDOUT = -110
	eALREADY  = -114
)

// decode decodes the params object into dst (a pointer to a struct whose
// json tags name every field SPDK's decoder knows) the way
// spdk_json_decode_object does: params omitted or null are an empty
// object; anything but an object fails; an unknown member fails; a member
// named in required must be present; types are not coerced and null is
// not a value. Nested objects are decoded strictly too.
func (r *request) decode(dst any, required ...string) error {
	return r.decodeObject(r.params, dst, false, required)
}

// decodeRelaxed is decode that ignores unknown top-level members, as
// spdk_json_decode_object_relaxed does (nested objects stay strict).
func (r *request) decodeRelaxed(dst any, required ...string) error {
	return r.decodeObject(r.params, dst, true, required)
}

// noParams enforces a method that takes no params: any params object,
// even {}, is refused.
func (r *request) noParams() error {
	if r.params != nil {
		return r.errf(-32602, "%s method requires no parameters", r.method)
	}
	return nil
}

func (r *request) decodeObject(raw json.RawMessage, dst any, relaxed bool, required []string) error {
	members := map[string]json.RawMessage{}
	raw = bytes.TrimSpace(raw)
	if len(raw) != 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			return r.decodeErr()
		}
		if err := json.Unmarshal(raw, &members); err != nil {
			return r.decodeErr()
		}
	}
	v := reflect.ValueOf(dst).Elem()
	fields := jsonFields(v.Type())
	for name, val := range members {
		idx, ok := fields[name]
		if !ok {
			if relaxed {
				continue
			}
			return r.decodeErr()
		}
		if bytes.Equal(bytes.TrimSpace(val), []byte("null")) {
			return r.decodeErr()
		}
		dec := json.NewDecoder(bytes.NewReader(val))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v.Field(idx).Addr().Interface()); err != nil {
			return r.decodeErr()
		}
	}
	for _, name := range required {
		if _, ok := members[name]; !ok {
			return r.decodeErr()
		}
	}
	return nil
}

// jsonFields maps the json names of t's fields to their index.
func jsonFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

// present reports whether the params object has member name (decode has
// already checked that it is an object).
func (r *request) present(name string) bool {
	var members map[string]json.RawMessage
	if json.Unmarshal(r.params, &members) != nil {
		return false
	}
	_, ok := members[name]
	return ok
}
