package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
)

// printJSON prints m as multi-line JSON with the proto field names,
// leaving out unset fields.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// table collects rows and prints them aligned under a header.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	writeRow(tw, t.header)
	for _, r := range t.rows {
		writeRow(tw, r)
	}
	return tw.Flush()
}

func writeRow(w io.Writer, cells []string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		io.WriteString(w, cell(c))
	}
	io.WriteString(w, "\n")
}

// cell makes s safe for one table cell: no tabs or line breaks, and "-"
// for nothing.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// field is one "key: value" line of a detail block.
type field struct{ key, value string }

// printFields prints fields as an aligned "key: value" block.
func printFields(w io.Writer, fields []field) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.key, cell(f.value))
	}
	return tw.Flush()
}

// printSection prints a titled table after a blank line.
func printSection(w io.Writer, title string, t *table) error {
	if _, err := fmt.Fprintf(w, "\n%s:\n", title); err != nil {
		return err
	}
	if len(t.rows) == 0 {
		_, err := fmt.Fprintln(w, "  (none)")
		return err
	}
	return t.print(w)
}

// fmtHealth spells a health in lower case: "ok", "error", "failed",
// "unknown"; "" when unspecified.
func fmtHealth(h vdav1.Health) string {
	if h == vdav1.Health_HEALTH_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(h.String(), "HEALTH_"))
}

// fmtRole spells a controller role: "primary" or "secondary".
func fmtRole(r vdav1.CntlrRole) string {
	if r == vdav1.CntlrRole_CNTLR_ROLE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "CNTLR_ROLE_"))
}

// fmtListener spells a listener as "tcp://10.0.0.1:4420" ("[::1]:4420"
// for IPv6).
func fmtListener(l *vdav1.NvmfListener) string {
	if l == nil || (l.GetTraddr() == "" && l.GetTrsvcid() == "") {
		return ""
	}
	tr := l.GetTrtype()
	if tr == "" {
		tr = "tcp"
	}
	return strings.ToLower(tr) + "://" + net.JoinHostPort(l.GetTraddr(), l.GetTrsvcid())
}

// fmtListenerLong spells every part of a listener.
func fmtListenerLong(l *vdav1.NvmfListener) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf("trtype=%s adrfam=%s traddr=%s trsvcid=%s",
		l.GetTrtype(), l.GetAdrfam(), l.GetTraddr(), l.GetTrsvcid())
}

// fmtTime spells a Unix time in milliseconds as RFC 3339 in UTC; "" for 0.
func fmtTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func fmtBool(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func fmtUint[T uint32 | uint64](n T) string { return strconv.FormatUint(uint64(n), 10) }
