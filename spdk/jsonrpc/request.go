package jsonrpc

import (
	"bytes"
	"encoding/json"
)

// request is one request object that passed SPDK's envelope checks.
type request struct {
	method string
	params json.RawMessage // nil when absent or null
	// id is the id to echo, as SPDK writes it back: a number's own bytes,
	// a string re-escaped, or null.
	id []byte
	// notify: the request had no id, or id null. A result is not sent;
	// an error still is, with id null.
	notify bool
}

// parseRequest applies SPDK's envelope rules to one request object (raw
// starts with '{' and is valid JSON). The members allowed are jsonrpc
// (optional, and then exactly "2.0"), method (a string), id (a string, a
// number or null) and params (an object, an array or null); an unknown or
// repeated member, or a wrong type, makes the request invalid. It returns
// the request, or the -32600 answer to send instead: with id null, except
// for bad params, which SPDK checks after it has taken the id.
func parseRequest(raw []byte) (request, []byte) {
	members, ok := objectMembers(raw)
	if !ok {
		return request{}, invalidRequest(nullID)
	}
	var req request
	if v, ok := members["jsonrpc"]; ok {
		var version string
		if v[0] != '"' || json.Unmarshal(v, &version) != nil || version != "2.0" {
			return request{}, invalidRequest(nullID)
		}
	}
	v, ok := members["method"]
	if !ok || v[0] != '"' || json.Unmarshal(v, &req.method) != nil {
		return request{}, invalidRequest(nullID)
	}
	req.id, req.notify = nullID, true
	if v, ok := members["id"]; ok {
		switch c := v[0]; {
		case c == '"':
			var s string
			if json.Unmarshal(v, &s) != nil {
				return request{}, invalidRequest(nullID)
			}
			req.id, req.notify = appendString(nil, s), false
		case c == '-' || (c >= '0' && c <= '9'):
			req.id, req.notify = v, false
		case c == 'n':
			// null: a notification, like no id at all
		default:
			return request{}, invalidRequest(nullID)
		}
	}
	if v, ok := members["params"]; ok {
		switch v[0] {
		case '{', '[':
			req.params = v
		case 'n':
		default:
			return request{}, invalidRequest(req.id)
		}
	}
	return req, nil
}

// objectMembers splits a JSON object into its members. It reports false for
// a member other than the four of the envelope, or one given twice.
func objectMembers(raw []byte) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	members := make(map[string]json.RawMessage, 4)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		switch name {
		case "jsonrpc", "method", "params", "id":
		default:
			return nil, false
		}
		if _, dup := members[name]; dup {
			return nil, false
		}
		members[name] = v
	}
	return members, true
}

// batchElements splits a JSON array into its elements.
func batchElements(raw []byte) ([]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, false
	}
	var elems []json.RawMessage
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		elems = append(elems, v)
	}
	return elems, true
}
