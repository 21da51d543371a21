package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// completionScript runs vdactl completion shell.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"completion", shell}, &stdout, &stderr), stderr.String())
	require.Empty(t, stderr.String())
	return stdout.String()
}

// writeScript saves script in a temporary file and returns its path.
func writeScript(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vdactl-completion")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o600))
	return path
}

func TestCompletionBashScript(t *testing.T) {
	t.Parallel()
	script := completionScript(t, "bash")
	for _, want := range []string{
		"complete -F _vdactl vdactl",
		"children='dn pd cn da exp cluster token whoami completion version'",
		"children='create delete modify list get'",
		"children='create delete modify list get events syncup'",
		"children='create delete list'",
		"children='summary'",
		"--portal", "--output", "-o", "--timeout", "--help",
		"--token", "--token-file", "--ca-file", "--config", "--role", "--force",
		"'--role') echo 'read-only operator admin'",
		"_vdactl_files=' --token-file --ca-file --config '",
		"--agent-address", "--trtype", "--adrfam", "--traddr", "--trsvcid", "--location", "--offline", "--no-offline",
		"--hash-code", "--description", "--generation", "--page-size", "--page-token", "--all",
		"--dn", "--malloc-size", "--aio-path", "--nvme-pcie",
		"--size", "--vd-count", "--strip-size-kb", "--cntlr-count", "--primary", "--da", "--host-nqn", "--limit",
		"'--output') echo 'table json'",
		"args='bash zsh fish'",
	} {
		assert.Contains(t, script, want)
	}

	// Every command of the kong model has its entry.
	var cli CLI
	parser, err := newParser(&cli, &bytes.Buffer{}, &bytes.Buffer{}, &Client{})
	require.NoError(t, err)
	for _, leaf := range parser.Model.Leaves(true) {
		assert.Contains(t, script, "        '"+leaf.Path()+"')\n", leaf.Path())
	}
}

// TestCompletionBash runs the bash script's completion function.
func TestCompletionBash(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	path := writeScript(t, completionScript(t, "bash"))
	tests := []struct {
		words []string // the last one is being completed
		want  string
	}{
		{[]string{"vdactl", ""}, "dn pd cn da exp cluster token whoami completion version"},
		{[]string{"vdactl", "d"}, "dn da"},
		{[]string{"vdactl", "dn", ""}, "create delete modify list get events syncup"},
		{[]string{"vdactl", "cn", "syncup", "--f"}, "--force"},
		{[]string{"vdactl", "token", ""}, "create delete list"},
		{[]string{"vdactl", "token", "create", "--role", ""}, "read-only operator admin"},
		{[]string{"vdactl", "--ca-file", "/dev/nul"}, "/dev/null"},
		{[]string{"vdactl", "--config", "=", "/dev/nul"}, "/dev/null"},
		{[]string{"vdactl", "--token-file", "/dev/null", "who"}, "whoami"},
		{[]string{"vdactl", "-o", "json", "cluster", ""}, "summary"},
		{[]string{"vdactl", "--portal", "dn", ""}, "dn pd cn da exp cluster token whoami completion version"},
		{[]string{"vdactl", "pd", "create", "--"}, "--help --portal --token --token-file --ca-file --config --output --timeout --dn --malloc-size --aio-path --nvme-pcie --offline --description"},
		{[]string{"vdactl", "dn", "modify", "--no"}, "--no-offline"},
		{[]string{"vdactl", "exp", "create", "--h"}, "--help --host-nqn"},
		{[]string{"vdactl", "-o", ""}, "table json"},
		{[]string{"vdactl", "--output", "=", ""}, "table json"},
		{[]string{"vdactl", "--output", "=", "j"}, "json"},
		{[]string{"vdactl", "da", "create", "--raid", ""}, "raid0"},
		{[]string{"vdactl", "dn", "create", "--adrfam", ""}, "ipv4 ipv6"},
		{[]string{"vdactl", "pd", "list", "--dn", ""}, ""},
		{[]string{"vdactl", "dn", "get", ""}, ""},
		{[]string{"vdactl", "completion", ""}, "bash zsh fish"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.words, " "), func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), bash, "--norc", "--noprofile", "-c",
				`source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _vdactl; echo "${COMPREPLY[*]}"`,
				"bash", path)
			cmd.Args = append(cmd.Args, tc.words...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
			assert.Equal(t, tc.want, strings.TrimSuffix(string(out), "\n"))
		})
	}
}

func TestCompletionZsh(t *testing.T) {
	t.Parallel()
	script := completionScript(t, "zsh")
	for _, want := range []string{
		"#compdef vdactl",
		"compdef _vdactl vdactl",
		"'dn:Manage disk nodes",
		"'--malloc-size:Back the pd by a RAM disk",
		"'--no-offline:",
		"'-o:Output format",
	} {
		assert.Contains(t, script, want)
	}
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("no zsh")
	}
	path := writeScript(t, script)
	out, err := exec.CommandContext(t.Context(), zsh, "-n", path).CombinedOutput()
	require.NoError(t, err, string(out))

	// Run the completion function with zsh's completion builtins stubbed.
	tests := []struct {
		words []string
		want  string
	}{
		{[]string{"vdactl", "pd", ""}, "create delete modify list get"},
		{[]string{"vdactl", "-o", ""}, "compadd -- table json"},
		{[]string{"vdactl", "--output="}, "compadd -P --output= -- table json"},
		{[]string{"vdactl", "completion", ""}, "compadd -a args"},
		{[]string{"vdactl", "--ca-file", ""}, "_files"},
		{[]string{"vdactl", "--config=/e"}, "compset -P *= _files"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.words, " "), func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), zsh, "-f", "-c", `
				compdef() {}
				_describe() { local x; for x in "${(@P)4}"; do print -rn -- "${x%%:*} "; done; print }
				compadd() { print -r -- "compadd $*" }
				compset() { print -rn -- "compset $* " }
				_files() { print -r -- "_files" }
				source "$1"; shift; words=("$@"); CURRENT=${#words}; _vdactl`, "zsh", path)
			cmd.Args = append(cmd.Args, tc.words...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
			assert.Equal(t, tc.want, strings.TrimSpace(string(out)))
		})
	}
}

func TestCompletionFish(t *testing.T) {
	t.Parallel()
	script := completionScript(t, "fish")
	for _, want := range []string{
		"complete -c vdactl -f\n",
		`complete -c vdactl -n '__vdactl_at ""' -a 'dn'`,
		`complete -c vdactl -n '__vdactl_at "pd create"' -l malloc-size -x`,
		`complete -c vdactl -l output -s o -x -a 'table json'`,
		`complete -c vdactl -l ca-file -r -F`,
		"-l no-offline",
	} {
		assert.Contains(t, script, want)
	}
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("no fish")
	}
	path := writeScript(t, script)
	out, err := exec.CommandContext(t.Context(), fish, "--no-config", "-n", path).CombinedOutput()
	require.NoError(t, err, string(out))

	tests := []struct {
		line string
		want string
	}{
		{"vdactl ", "cluster cn completion da dn exp pd token version whoami"},
		{"vdactl token create --role ", "admin operator read-only"},
		{"vdactl dn ", "create delete events get list modify syncup"},
		{"vdactl --ca-file /dev/nul", "/dev/null"},
		{"vdactl --config /dev/null who", "whoami"},
		{"vdactl -o json da create --s", "--size --strip-size-kb"},
		{"vdactl -o ", "json table"},
		{"vdactl completion ", "bash fish zsh"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			t.Parallel()
			// string join of one word joins nothing and fails: "or true".
			cmd := exec.CommandContext(t.Context(), fish, "--no-config", "-c",
				`source $argv[1]; complete -C $argv[2] | string replace -r '\t.*' '' | string join ' '; or true`, path, tc.line)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
			assert.Equal(t, tc.want, strings.TrimSpace(string(out)))
		})
	}
}
