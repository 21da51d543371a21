package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// CompletionCmd is vdactl completion: it prints a completion script made
// from the kong model, so the script knows every command and flag.
type CompletionCmd struct {
	Shell string `arg:"" help:"Shell to complete in: ${enum}." enum:"bash,zsh,fish"`
}

func (*CompletionCmd) offline() {}

// Run prints the script for the chosen shell.
func (cc *CompletionCmd) Run(ctx context.Context, c *Client, kctx *kong.Context) error {
	root := newCompCmd(kctx.Model.Node, nil)
	var s string
	switch cc.Shell {
	case "bash":
		s = bashCompletion(root)
	case "zsh":
		s = zshCompletion(root)
	case "fish":
		s = fishCompletion(root)
	default:
		return fmt.Errorf("no completion for shell %q", cc.Shell)
	}
	_, err := io.WriteString(c.Stdout, s)
	return err
}

// compFlag is one flag as the completion scripts see it.
type compFlag struct {
	name     string // long name without dashes
	short    rune   // 0 for none
	negation string // long name of the negated form without dashes, or ""
	help     string
	valued   bool     // takes a value
	file     bool     // the value is a file name
	enum     []string // the values it takes, when they are a fixed set
}

// compCmd is one command, or the application at the root.
type compCmd struct {
	name     string
	path     string // command names from the root, space-separated; "" at the root
	help     string
	parent   *compCmd
	children []*compCmd
	flags    []compFlag // its own flags, not its ancestors'
	args     []string   // fixed values of its positional arguments
}

func newCompCmd(n *kong.Node, parent *compCmd) *compCmd {
	cc := &compCmd{name: n.Name, help: n.Help, parent: parent}
	if parent != nil {
		cc.path = strings.TrimSpace(parent.path + " " + n.Name)
	}
	for _, f := range n.Flags {
		if f.Hidden {
			continue
		}
		cf := compFlag{
			name:   f.Name,
			short:  f.Short,
			help:   f.Help,
			valued: !f.IsBool() && !f.IsCounter(),
		}
		switch f.Tag.Type {
		case "path", "existingfile", "filecontent":
			cf.file = true
		}
		switch neg := f.Tag.Negatable; neg {
		case "":
		case "_":
			cf.negation = "no-" + f.Name
		default:
			cf.negation = neg
		}
		if f.Enum != "" {
			cf.enum = f.EnumSlice()
		}
		cc.flags = append(cc.flags, cf)
	}
	for _, p := range n.Positional {
		if p.Enum != "" {
			cc.args = append(cc.args, p.EnumSlice()...)
		}
	}
	for _, child := range n.Children {
		if child.Hidden || child.Type != kong.CommandNode {
			continue
		}
		cc.children = append(cc.children, newCompCmd(child, cc))
	}
	return cc
}

// walk calls fn on cc and every command below it, parents first.
func (cc *compCmd) walk(fn func(*compCmd)) {
	fn(cc)
	for _, c := range cc.children {
		c.walk(fn)
	}
}

// allFlags returns the flags valid at cc: its ancestors' and its own.
func (cc *compCmd) allFlags() []compFlag {
	if cc.parent == nil {
		return cc.flags
	}
	return append(append([]compFlag(nil), cc.parent.allFlags()...), cc.flags...)
}

// flagWords spells every form of the flags: --name, -s, --no-name.
func flagWords(flags []compFlag) []string {
	var out []string
	for _, f := range flags {
		out = append(out, "--"+f.name)
		if f.short != 0 {
			out = append(out, "-"+string(f.short))
		}
		if f.negation != "" {
			out = append(out, "--"+f.negation)
		}
	}
	return out
}

// valuedFlags returns, over the whole tree, the spellings of flags that
// take a value, the fixed values of those that have them, and the
// spellings of those whose value is a file name.
func valuedFlags(root *compCmd) (words []string, enums map[string][]string, files []string) {
	seen := map[string]bool{}
	enums = map[string][]string{}
	root.walk(func(cc *compCmd) {
		for _, f := range cc.flags {
			if !f.valued {
				continue
			}
			forms := []string{"--" + f.name}
			if f.short != 0 {
				forms = append(forms, "-"+string(f.short))
			}
			for _, w := range forms {
				if !seen[w] {
					seen[w] = true
					words = append(words, w)
					if f.file {
						files = append(files, w)
					}
				}
				if len(f.enum) > 0 && enums[w] == nil {
					enums[w] = f.enum
				}
			}
		}
	})
	return words, enums, files
}

func childNames(cc *compCmd) []string {
	out := make([]string, len(cc.children))
	for i, c := range cc.children {
		out[i] = c.name
	}
	return out
}

// shQuote quotes s for bash and zsh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fishQuote quotes s for fish.
func fishQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// oneLine keeps the first line of a help text.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// writeEnumCase writes a shell case over flag spellings printing their
// fixed values, shared by bash and zsh.
func writeEnumCase(b *strings.Builder, words []string, enums map[string][]string) {
	b.WriteString("    case \"$1\" in\n")
	for _, w := range words {
		if e := enums[w]; len(e) > 0 {
			fmt.Fprintf(b, "        %s) echo %s ;;\n", shQuote(w), shQuote(strings.Join(e, " ")))
		}
	}
	b.WriteString("    esac\n")
}

// bashCompletion returns a bash completion script for the tree at root.
func bashCompletion(root *compCmd) string {
	var b strings.Builder
	valued, enums, files := valuedFlags(root)
	fmt.Fprintf(&b, `# bash completion for %[1]s, generated by '%[1]s completion bash'.
# Load it with:  source <(%[1]s completion bash)

_%[1]s_valued=%[2]s
_%[1]s_files=%[3]s

# _%[1]s_data PATH: set children, flags and args for the command at PATH.
_%[1]s_data() {
    children="" flags="" args=""
    case "$1" in
`, root.name, shQuote(" "+strings.Join(valued, " ")+" "), shQuote(" "+strings.Join(files, " ")+" "))
	root.walk(func(cc *compCmd) {
		fmt.Fprintf(&b, "        %s)\n            children=%s\n            flags=%s\n            args=%s ;;\n",
			shQuote(cc.path), shQuote(strings.Join(childNames(cc), " ")),
			shQuote(strings.Join(flagWords(cc.allFlags()), " ")), shQuote(strings.Join(cc.args, " ")))
	})
	fmt.Fprintf(&b, `    esac
}

# _%[1]s_enum FLAG: print the values FLAG takes, if they are a fixed set.
_%[1]s_enum() {
`, root.name)
	writeEnumCase(&b, valued, enums)
	fmt.Fprintf(&b, `}

_%[1]s() {
    local cur="${COMP_WORDS[COMP_CWORD]}" flag="" cmdpath="" word skip=0 i
    local children flags args
    # The flag whose value is being typed, if any. bash splits --flag=value
    # at '=', into "--flag" "=" "value".
    if [[ "$cur" == "=" ]] && (( COMP_CWORD > 1 )); then
        flag="${COMP_WORDS[COMP_CWORD-1]}" cur=""
    elif [[ "${COMP_WORDS[COMP_CWORD-1]}" == "=" ]] && (( COMP_CWORD > 2 )); then
        flag="${COMP_WORDS[COMP_CWORD-2]}"
    elif (( COMP_CWORD > 1 )); then
        flag="${COMP_WORDS[COMP_CWORD-1]}"
    fi
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${COMP_WORDS[i]}"
        if (( skip )); then skip=0; continue; fi
        case "$word" in
            -*=*) ;;
            -*) [[ "$_%[1]s_valued" == *" $word "* ]] && skip=1 ;;
            *)
                _%[1]s_data "$cmdpath"
                if [[ " $children " == *" $word "* ]]; then
                    cmdpath="${cmdpath:+$cmdpath }$word"
                fi ;;
        esac
    done
    if [[ "$flag" == -* && "$_%[1]s_files" == *" $flag "* ]]; then
        compopt -o filenames 2>/dev/null
        COMPREPLY=( $(compgen -f -- "$cur") )
        return 0
    fi
    if [[ "$flag" == -* && "$_%[1]s_valued" == *" $flag "* ]]; then
        COMPREPLY=( $(compgen -W "$(_%[1]s_enum "$flag")" -- "$cur") )
        return 0
    fi
    _%[1]s_data "$cmdpath"
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
    else
        COMPREPLY=( $(compgen -W "$children $args" -- "$cur") )
    fi
    return 0
}

complete -F _%[1]s %[1]s
`, root.name)
	return b.String()
}

// zshCompletion returns a zsh completion script for the tree at root.
func zshCompletion(root *compCmd) string {
	var b strings.Builder
	valued, enums, files := valuedFlags(root)
	fmt.Fprintf(&b, `#compdef %[1]s
# zsh completion for %[1]s, generated by '%[1]s completion zsh'.
# Load it with:  source <(%[1]s completion zsh)
# or save it as _%[1]s in a directory of $fpath.

_%[1]s_valued=%[2]s
_%[1]s_files=%[3]s

# _%[1]s_data PATH: set children, flags (name:description) and args for
# the command at PATH.
_%[1]s_data() {
    children=() flags=() args=()
    case "$1" in
`, root.name, shQuote(" "+strings.Join(valued, " ")+" "), shQuote(" "+strings.Join(files, " ")+" "))
	root.walk(func(cc *compCmd) {
		fmt.Fprintf(&b, "        %s)\n", shQuote(cc.path))
		var kids []string
		for _, c := range cc.children {
			kids = append(kids, shQuote(c.name+":"+oneLine(c.help)))
		}
		fmt.Fprintf(&b, "            children=(%s)\n", strings.Join(kids, " "))
		var fl []string
		for _, f := range cc.allFlags() {
			fl = append(fl, shQuote("--"+f.name+":"+oneLine(f.help)))
			if f.short != 0 {
				fl = append(fl, shQuote("-"+string(f.short)+":"+oneLine(f.help)))
			}
			if f.negation != "" {
				fl = append(fl, shQuote("--"+f.negation+":"+oneLine(f.help)))
			}
		}
		fmt.Fprintf(&b, "            flags=(%s)\n", strings.Join(fl, " "))
		var as []string
		for _, a := range cc.args {
			as = append(as, shQuote(a))
		}
		fmt.Fprintf(&b, "            args=(%s) ;;\n", strings.Join(as, " "))
	})
	fmt.Fprintf(&b, `    esac
}

# _%[1]s_enum FLAG: print the values FLAG takes, if they are a fixed set.
_%[1]s_enum() {
`, root.name)
	writeEnumCase(&b, valued, enums)
	fmt.Fprintf(&b, `}

_%[1]s() {
    local cur="${words[CURRENT]}" prev="${words[CURRENT-1]}" cmdpath="" word
    local -i skip=0 i
    local -a children flags args
    for (( i = 2; i < CURRENT; i++ )); do
        word="${words[i]}"
        if (( skip )); then skip=0; continue; fi
        case "$word" in
            -*=*) ;;
            -*) [[ "$_%[1]s_valued" == *" $word "* ]] && skip=1 ;;
            *)
                _%[1]s_data "$cmdpath"
                if (( ${children[(I)${word}:*]} )); then
                    cmdpath="${cmdpath:+$cmdpath }$word"
                fi ;;
        esac
    done
    if [[ "$cur" == -*=* && "$_%[1]s_files" == *" ${cur%%%%=*} "* ]]; then
        compset -P '*='
        _files
        return
    fi
    if [[ "$prev" == -* && "$_%[1]s_files" == *" $prev "* ]]; then
        _files
        return
    fi
    if [[ "$cur" == -*=* ]]; then
        compadd -P "${cur%%%%=*}=" -- ${=$(_%[1]s_enum "${cur%%%%=*}")}
        return
    fi
    if [[ "$prev" == -* && "$_%[1]s_valued" == *" $prev "* ]]; then
        compadd -- ${=$(_%[1]s_enum "$prev")}
        return
    fi
    _%[1]s_data "$cmdpath"
    if [[ "$cur" == -* ]]; then
        _describe -t flags 'flag' flags
    else
        local -i ret=1
        (( ${#children} )) && _describe -t commands 'command' children && ret=0
        (( ${#args} )) && compadd -a args && ret=0
        return ret
    fi
}

if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then
    _%[1]s "$@"
else
    compdef _%[1]s %[1]s
fi
`, root.name)
	return b.String()
}

// fishCompletion returns a fish completion script for the tree at root.
func fishCompletion(root *compCmd) string {
	var b strings.Builder
	valued, _, _ := valuedFlags(root)
	var paths []string
	root.walk(func(cc *compCmd) {
		if cc.path != "" {
			paths = append(paths, fishQuote(cc.path))
		}
	})
	var vq []string
	for _, v := range valued {
		vq = append(vq, fishQuote(v))
	}
	fmt.Fprintf(&b, `# fish completion for %[1]s, generated by '%[1]s completion fish'.
# Load it with:  %[1]s completion fish | source

# __%[1]s_path: the commands typed so far, space-separated.
function __%[1]s_path
    set -l valued %[2]s
    set -l paths %[3]s
    set -l cmdpath
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '-*=*'
            case '-*'
                if contains -- $word $valued
                    set skip 1
                end
            case '*'
                if contains -- (string join ' ' $cmdpath $word) $paths
                    set -a cmdpath $word
                end
        end
    end
    string join ' ' $cmdpath
end

# __%[1]s_at PATH: whether the commands typed so far are PATH.
function __%[1]s_at
    set -l p (__%[1]s_path)
    test "$p" = "$argv[1]"
end

complete -c %[1]s -f
`, root.name, strings.Join(vq, " "), strings.Join(paths, " "))
	root.walk(func(cc *compCmd) {
		// Commands and arguments only right where they belong; the flags
		// of the root everywhere.
		cond := " -n " + fishQuote("__"+root.name+"_at \""+cc.path+"\"")
		flagCond := cond
		if cc.parent == nil {
			flagCond = ""
		}
		for _, c := range cc.children {
			fmt.Fprintf(&b, "complete -c %s%s -a %s -d %s\n", root.name, cond, fishQuote(c.name), fishQuote(oneLine(c.help)))
		}
		if len(cc.args) > 0 {
			fmt.Fprintf(&b, "complete -c %s%s -a %s\n", root.name, cond, fishQuote(strings.Join(cc.args, " ")))
		}
		// Flags of the root hold everywhere; the others where their command
		// or one below it was typed.
		flags := cc.flags
		if cc.parent != nil {
			flags = cc.allFlags()[len(root.flags):]
		}
		for _, f := range flags {
			line := fmt.Sprintf("complete -c %s%s -l %s", root.name, flagCond, f.name)
			if f.short != 0 {
				line += " -s " + string(f.short)
			}
			switch {
			case f.file:
				line += " -r -F" // takes a file name
			case f.valued:
				line += " -x" // takes a value, and no file names
			}
			if len(f.enum) > 0 {
				line += " -a " + fishQuote(strings.Join(f.enum, " "))
			}
			fmt.Fprintf(&b, "%s -d %s\n", line, fishQuote(oneLine(f.help)))
			if f.negation != "" {
				fmt.Fprintf(&b, "complete -c %s%s -l %s -d %s\n", root.name, flagCond, f.negation, fishQuote(oneLine(f.help)))
			}
		}
	})
	return b.String()
}
