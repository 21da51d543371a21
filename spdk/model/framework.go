package model

import "context"

// Application-level methods: version, method list, initialization.

type versionJSON struct {
	Version string `json:"version"`
	Fields  struct {
		Major  int    `json:"major"`
		Minor  int    `json:"minor"`
		Patch  int    `json:"patch"`
		Suffix string `json:"suffix"`
	} `json:"fields"`
}

// spdkGetVersion: spdk_get_version, which takes no params. The model
// answers as SPDK v26.05, the version whose behaviour it reproduces.
func spdkGetVersion(_ context.Context, _ *Target, r *request) (any, error) {
	if err := r.noParams(); err != nil {
		return nil, err
	}
	var v versionJSON
	v.Version = "SPDK v26.05"
	v.Fields.Major, v.Fields.Minor = 26, 5
	return v, nil
}

// rpcGetMethods: rpc_get_methods {current?, include_aliases?}. It lists
// SPDK's methods, not only those the model serves (the others answer
// "Method not found").
func rpcGetMethods(_ context.Context, _ *Target, r *request) (any, error) {
	var p struct {
		Current        bool `json:"current"`
		IncludeAliases bool `json:"include_aliases"`
	}
	if err := r.decode(&p); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(spdkMethods))
	for _, m := range spdkMethods {
		if p.Current && startupOnlyMethods[m] {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// frameworkWaitInit: framework_wait_init, which takes no params; the
// model is initialized from the start.
func frameworkWaitInit(_ context.Context, _ *Target, r *request) (any, error) {
	if err := r.noParams(); err != nil {
		return nil, err
	}
	return true, nil
}
