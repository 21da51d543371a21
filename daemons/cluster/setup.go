package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	"github.com/virtual-disk-array/vda"
	vdav1 "github.com/virtual-disk-array/vda/proto/vda/v1"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
)

// The names of what the cluster creates.
const (
	daName    = "da0"
	expName   = "host0"
	aioPdName = "aio0"
	// mallocPdName is dn0's RAM disk: its data is gone at every restart,
	// so the array is not placed on it (see setup).
	mallocPdName = "malloc0"
)

// setup makes the store hold the cluster's nodes, pds, array and exporter,
// creating only what is missing: on a rerun it finds them all and creates
// nothing; the monitor then pushes every node its desired state, and the
// data planes find their lvstores again on the aio files. A node whose
// addresses changed (other --base-port or --nvme-base-port) is moved to
// the new ones.
func setup(ctx context.Context, api vdav1connect.PortalServiceClient, l *layout, c *cli, hostNQN string, log *slog.Logger) error {
	for _, n := range l.Dns {
		if err := ensureDn(ctx, api, n, log); err != nil {
			return err
		}
		aio := &vdav1.CreatePdRequest{DnName: n.Name, Name: aioPdName, Backend: &vdav1.CreatePdRequest_Aio{Aio: &vdav1.PdAio{Path: n.AioPath}}}
		if err := ensurePd(ctx, api, aio, log); err != nil {
			return err
		}
	}
	for _, n := range l.Cns {
		if err := ensureCn(ctx, api, n, log); err != nil {
			return err
		}
	}
	if err := warnUnstarted(ctx, api, l, log); err != nil {
		return err
	}
	_, err := api.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: daName}))
	switch {
	case connect.CodeOf(err) == connect.CodeNotFound:
		// An aio pd offers nothing to the allocator until its agent
		// reported the lvstore's capacity.
		for _, n := range l.Dns {
			if err := waitCapacity(ctx, api, n.Name, aioPdName, c.ReadyTimeout); err != nil {
				return err
			}
		}
		resp, err := api.CreateDa(ctx, connect.NewRequest(&vdav1.CreateDaRequest{
			Name: daName, Size: uint64(c.DaSize),
			Raid:        &vdav1.CreateDaRequest_Raid0{Raid0: &vdav1.Raid0{VdCount: uint32(min(2, len(l.Dns))), StripSizeKb: 64}},
			CntlrCount:  uint32(min(2, len(l.Cns))),
			Description: "made by vda-cluster",
		}))
		if err != nil {
			return fmt.Errorf("create da %s: %w", daName, err)
		}
		log.Info("created", "da", daName, "size", vda.FormatSize(resp.Msg.GetDa().GetSize()), "nqn", resp.Msg.GetDa().GetNqn())
	case err != nil:
		return fmt.Errorf("get da %s: %w", daName, err)
	default:
		log.Info("found da0 from an earlier run: creating nothing", "state_dir", l.State)
	}
	// The malloc pd comes after the array: the allocator puts a vd on the
	// pd of its dn with the most free space, and a malloc pd, whose
	// capacity is known before its first report, could win over the aio
	// pd (or be the only candidate while the aio pd has not reported
	// yet); the array would then lose its data at every restart.
	// Afterwards it is free capacity for the arrays a person creates.
	if len(l.Dns) > 0 {
		malloc := &vdav1.CreatePdRequest{DnName: l.Dns[0].Name, Name: mallocPdName, Backend: &vdav1.CreatePdRequest_Malloc{Malloc: &vdav1.PdMalloc{Size: uint64(c.MallocSize)}}}
		if err := ensurePd(ctx, api, malloc, log); err != nil {
			return err
		}
	}
	exp, err := api.GetExp(ctx, connect.NewRequest(&vdav1.GetExpRequest{DaName: daName, Name: expName}))
	switch {
	case err == nil && c.HostNQN != "" && exp.Msg.GetExp().GetHostNqn() != c.HostNQN:
		// An exporter's host NQN is fixed: changing it quietly would cut
		// the host that uses it off.
		log.Warn("--host-nqn differs from the exporter the cluster has; the exporter is kept (delete it with vdactl exp delete to change it)",
			"exp", expName, "host_nqn", exp.Msg.GetExp().GetHostNqn(), "flag", c.HostNQN)
	case connect.CodeOf(err) == connect.CodeNotFound:
		if _, err := api.CreateExp(ctx, connect.NewRequest(&vdav1.CreateExpRequest{DaName: daName, Name: expName, HostNqn: hostNQN})); err != nil {
			return fmt.Errorf("create exp %s: %w", expName, err)
		}
		log.Info("created", "exp", expName, "da", daName, "host_nqn", hostNQN)
	case err != nil:
		return fmt.Errorf("get exp %s: %w", expName, err)
	}
	return nil
}

func listener(n *node) *vdav1.NvmfListener {
	return &vdav1.NvmfListener{Trtype: "tcp", Adrfam: "ipv4", Traddr: loopback, Trsvcid: fmt.Sprint(n.NvmePort)}
}

func sameListener(a, b *vdav1.NvmfListener) bool {
	return strings.EqualFold(a.GetTrtype(), b.GetTrtype()) && strings.EqualFold(a.GetAdrfam(), b.GetAdrfam()) &&
		a.GetTraddr() == b.GetTraddr() && a.GetTrsvcid() == b.GetTrsvcid()
}

func ensureDn(ctx context.Context, api vdav1connect.PortalServiceClient, n *node, log *slog.Logger) error {
	got, err := api.GetDn(ctx, connect.NewRequest(&vdav1.GetDnRequest{Name: n.Name}))
	switch {
	case connect.CodeOf(err) == connect.CodeNotFound:
		_, err := api.CreateDn(ctx, connect.NewRequest(&vdav1.CreateDnRequest{
			Name: n.Name, AgentAddress: n.AgentAddr(), Listener: listener(n), Location: "rack-" + n.Name,
		}))
		if err != nil {
			return fmt.Errorf("create dn %s: %w", n.Name, err)
		}
		log.Info("created", "dn", n.Name, "agent", n.AgentAddr(), "nvme_port", n.NvmePort)
		return nil
	case err != nil:
		return fmt.Errorf("get dn %s: %w", n.Name, err)
	}
	dn := got.Msg.GetDn()
	if dn.GetAgentAddress() == n.AgentAddr() && sameListener(dn.GetListener(), listener(n)) {
		return nil
	}
	addr, gen := n.AgentAddr(), dn.GetGeneration()
	if _, err := api.ModifyDn(ctx, connect.NewRequest(&vdav1.ModifyDnRequest{Name: n.Name, Generation: &gen, AgentAddress: &addr, Listener: listener(n)})); err != nil {
		return fmt.Errorf("move dn %s to its new addresses: %w", n.Name, err)
	}
	log.Info("moved", "dn", n.Name, "agent", addr, "nvme_port", n.NvmePort)
	return nil
}

func ensureCn(ctx context.Context, api vdav1connect.PortalServiceClient, n *node, log *slog.Logger) error {
	got, err := api.GetCn(ctx, connect.NewRequest(&vdav1.GetCnRequest{Name: n.Name}))
	switch {
	case connect.CodeOf(err) == connect.CodeNotFound:
		_, err := api.CreateCn(ctx, connect.NewRequest(&vdav1.CreateCnRequest{
			Name: n.Name, AgentAddress: n.AgentAddr(), Listener: listener(n), Location: "rack-" + n.Name,
		}))
		if err != nil {
			return fmt.Errorf("create cn %s: %w", n.Name, err)
		}
		log.Info("created", "cn", n.Name, "agent", n.AgentAddr(), "nvme_port", n.NvmePort)
		return nil
	case err != nil:
		return fmt.Errorf("get cn %s: %w", n.Name, err)
	}
	cn := got.Msg.GetCn()
	if cn.GetAgentAddress() == n.AgentAddr() && sameListener(cn.GetListener(), listener(n)) {
		return nil
	}
	addr, gen := n.AgentAddr(), cn.GetGeneration()
	if _, err := api.ModifyCn(ctx, connect.NewRequest(&vdav1.ModifyCnRequest{Name: n.Name, Generation: &gen, AgentAddress: &addr, Listener: listener(n)})); err != nil {
		return fmt.Errorf("move cn %s to its new addresses: %w", n.Name, err)
	}
	log.Info("moved", "cn", n.Name, "agent", addr, "nvme_port", n.NvmePort)
	return nil
}

// ensurePd creates the pd req describes unless its dn has a pd of that
// name already.
func ensurePd(ctx context.Context, api vdav1connect.PortalServiceClient, req *vdav1.CreatePdRequest, log *slog.Logger) error {
	dn, name := req.GetDnName(), req.GetName()
	_, err := api.GetPd(ctx, connect.NewRequest(&vdav1.GetPdRequest{DnName: dn, Name: name}))
	if err == nil {
		return nil
	}
	if connect.CodeOf(err) != connect.CodeNotFound {
		return fmt.Errorf("get pd %s/%s: %w", dn, name, err)
	}
	resp, err := api.CreatePd(ctx, connect.NewRequest(req))
	if err != nil {
		return fmt.Errorf("create pd %s/%s: %w", dn, name, err)
	}
	log.Info("created", "pd", dn+"/"+name, "backend", pdBackend(resp.Msg.GetPd()))
	return nil
}

// waitCapacity waits until the pd's agent has reported its capacity.
func waitCapacity(ctx context.Context, api vdav1connect.PortalServiceClient, dn, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		resp, err := api.GetPd(ctx, connect.NewRequest(&vdav1.GetPdRequest{DnName: dn, Name: name}))
		if err == nil {
			pd := resp.Msg.GetPd()
			if pd.GetCapacity() > 0 {
				return nil
			}
			last = fmt.Sprintf("health %s", health(pd.GetStatus().GetHealth()))
			if e := pd.GetStatus().GetError(); e != "" {
				last += ": " + e
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("pd %s/%s reported no capacity within %s (%s): the array cannot be placed on it; see the logs of %s-agent and %s-dataplane", dn, name, timeout, last, dn, dn)
			}
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// notReady lists what of the array is not converged: every vd and
// controller whose status is not OK, with the error its agent reported, or
// is OK only in a report older than since (Unix ms: when this run started
// its processes; on a rerun the store still holds the last run's reports
// until the new agents have applied their state); nothing when the array
// is ready.
func notReady(da *vdav1.Da, since int64) []string {
	var out []string
	state := func(s *vdav1.Status) string {
		if h := s.GetHealth(); h != vdav1.Health_HEALTH_OK {
			return health(h) + errSuffix(s)
		}
		if s.GetReportedAtMs() < since {
			return "not reported by this run's agents yet"
		}
		return ""
	}
	for _, vd := range da.GetVds() {
		if st := state(vd.GetStatus()); st != "" {
			out = append(out, fmt.Sprintf("vd %d on %s/%s: %s", vd.GetIndex(), vd.GetDnName(), vd.GetPdName(), st))
		}
	}
	for _, ct := range da.GetCntlrs() {
		if st := state(ct.GetStatus()); st != "" {
			out = append(out, fmt.Sprintf("controller %d (%s) on %s: %s", ct.GetIndex(), role(ct.GetRole()), ct.GetCnName(), st))
		}
	}
	if len(out) == 0 && da.GetHealth() != vdav1.Health_HEALTH_OK {
		out = append(out, "array health "+health(da.GetHealth()))
	}
	return out
}

func errSuffix(s *vdav1.Status) string {
	if s.GetError() == "" {
		return ""
	}
	return ": " + s.GetError()
}

// warnUnstarted names the nodes the store holds that this run does not
// start (an earlier run had more --dns or --cns): whatever lives on them
// stays unreachable, and the monitor fails their controllers over.
func warnUnstarted(ctx context.Context, api vdav1connect.PortalServiceClient, l *layout, log *slog.Logger) error {
	started := map[string]bool{}
	for _, n := range l.nodes() {
		started[n.Kind+"/"+n.Name] = true
	}
	var missing []string
	dns, err := api.ListDn(ctx, connect.NewRequest(&vdav1.ListDnRequest{PageSize: 1000}))
	if err != nil {
		return fmt.Errorf("list dns: %w", err)
	}
	for _, d := range dns.Msg.GetDns() {
		if !started["dn/"+d.GetName()] {
			missing = append(missing, d.GetName())
		}
	}
	cns, err := api.ListCn(ctx, connect.NewRequest(&vdav1.ListCnRequest{PageSize: 1000}))
	if err != nil {
		return fmt.Errorf("list cns: %w", err)
	}
	for _, n := range cns.Msg.GetCns() {
		if !started["cn/"+n.GetName()] {
			missing = append(missing, n.GetName())
		}
	}
	if len(missing) > 0 {
		log.Warn("the store holds nodes this run does not start: what lives on them is unreachable; run with as many --dns and --cns as before, or delete them with vdactl",
			"nodes", strings.Join(missing, ", "), "dns", len(l.Dns), "cns", len(l.Cns))
	}
	return nil
}

// waitConverged waits until GetDa reports every vd and controller of the
// array OK, and returns what is still not ready at the timeout.
func waitConverged(ctx context.Context, api vdav1connect.PortalServiceClient, since int64, timeout time.Duration) (pending []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		resp, err := api.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: daName}))
		if err == nil {
			if pending = notReady(resp.Msg.GetDa(), since); len(pending) == 0 {
				return nil, nil
			}
		} else if ctx.Err() == nil {
			pending = []string{err.Error()}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return pending, nil
			}
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// watchConverged logs once da0 converges after all, when it had not by
// --ready-timeout (the monitor keeps retrying every node).
func watchConverged(ctx context.Context, api vdav1connect.PortalServiceClient, since int64, log *slog.Logger) {
	for {
		pending, err := waitConverged(ctx, api, since, time.Minute)
		if err != nil {
			return
		}
		if len(pending) == 0 {
			log.Info("da0 is ready now")
			return
		}
	}
}

func health(h vdav1.Health) string {
	return strings.ToLower(strings.TrimPrefix(h.String(), "HEALTH_"))
}

func role(r vdav1.CntlrRole) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "CNTLR_ROLE_"))
}

func pdBackend(pd *vdav1.Pd) string {
	switch b := pd.GetBackend().(type) {
	case *vdav1.Pd_Malloc:
		return "malloc " + vda.FormatSize(b.Malloc.GetSize())
	case *vdav1.Pd_Aio:
		return "aio " + b.Aio.GetPath()
	case *vdav1.Pd_Nvme:
		return "nvme " + b.Nvme.GetPcieAddr()
	}
	return "?"
}

// nvmeConnect is the nvme-cli line with which the exporter's host connects
// through one path.
func nvmeConnect(exp *vdav1.Exp, p *vdav1.ExpPath) string {
	l := p.GetListener()
	tr := strings.ToLower(l.GetTrtype())
	if tr == "" {
		tr = "tcp"
	}
	return fmt.Sprintf("nvme connect -t %s -a %s -s %s -n %s -q %s", tr, l.GetTraddr(), l.GetTrsvcid(), exp.GetTargetNqn(), exp.GetHostNqn())
}

// report prints, for a person, what the cluster holds and how to use it.
func report(ctx context.Context, w io.Writer, api vdav1connect.PortalServiceClient, l *layout, c *cli, sup *supervisor, sec *security, pending []string) error {
	da, err := api.GetDa(ctx, connect.NewRequest(&vdav1.GetDaRequest{Name: daName}))
	if err != nil {
		return fmt.Errorf("get da %s: %w", daName, err)
	}
	exp, err := api.GetExp(ctx, connect.NewRequest(&vdav1.GetExpRequest{DaName: daName, Name: expName}))
	if err != nil {
		return fmt.Errorf("get exp %s: %w", expName, err)
	}
	das, err := api.ListDa(ctx, connect.NewRequest(&vdav1.ListDaRequest{PageSize: 1000}))
	if err != nil {
		return fmt.Errorf("list das: %w", err)
	}
	var daNames []string
	for _, d := range das.Msg.GetDas() {
		daNames = append(daNames, d.GetName())
	}
	pds := map[string][]*vdav1.Pd{}
	for _, n := range l.Dns {
		resp, err := api.ListPd(ctx, connect.NewRequest(&vdav1.ListPdRequest{DnName: n.Name}))
		if err != nil {
			return fmt.Errorf("list pds of %s: %w", n.Name, err)
		}
		pds[n.Name] = resp.Msg.GetPds()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n==== VDA cluster in %s (store %s)\n\n", l.State, redact(c.DSN))
	t := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(t, "NODE\tAGENT\tNVME/TCP\tDATA PLANE /metrics\tPDS\n")
	for _, n := range l.nodes() {
		var names []string
		for _, pd := range pds[n.Name] {
			names = append(names, fmt.Sprintf("%s (%s, %s free)", pd.GetName(), pdBackend(pd), vda.FormatSize(pd.GetCapacity()-min(pd.GetCapacity(), pd.GetAllocated()))))
		}
		fmt.Fprintf(t, "%s\t%s\t%s:%d\t%s\t%s\n", n.Name, n.AgentAddr(), loopback, n.NvmePort, n.MetricsAddr(), strings.Join(names, ", "))
	}
	fmt.Fprintf(t, "portal\t%s\t\t\t\n", l.Portal)
	fmt.Fprintf(t, "monitor\t%s (/metrics)\t\t\t\n", hostPort(l.MonitorPort))
	t.Flush()

	d := da.Msg.GetDa()
	fmt.Fprintf(&b, "\nDisk array %s: %s raid0 over %d vds, %d controllers, health %s\n  NQN %s\n",
		d.GetName(), vda.FormatSize(d.GetSize()), len(d.GetVds()), len(d.GetCntlrs()), health(d.GetHealth()), d.GetNqn())
	t = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, vd := range d.GetVds() {
		fmt.Fprintf(t, "  vd %d\ton %s/%s\t%s\t%s%s\n", vd.GetIndex(), vd.GetDnName(), vd.GetPdName(), vda.FormatSize(vd.GetSize()), health(vd.GetStatus().GetHealth()), errSuffix(vd.GetStatus()))
	}
	for _, ct := range d.GetCntlrs() {
		fmt.Fprintf(t, "  controller %d\ton %s (%s)\t%s:%s\t%s%s\n", ct.GetIndex(), ct.GetCnName(), role(ct.GetRole()), ct.GetListener().GetTraddr(), ct.GetListener().GetTrsvcid(), health(ct.GetStatus().GetHealth()), errSuffix(ct.GetStatus()))
	}
	t.Flush()
	fmt.Fprintf(&b, "Arrays in the store: %s\n", strings.Join(daNames, ", "))
	e := exp.Msg.GetExp()
	fmt.Fprintf(&b, "\nExporter %s: host %s may reach %s.\nConnect from a Linux host (nvme-cli), one line per controller:\n", e.GetName(), e.GetHostNqn(), d.GetName())
	for _, p := range e.GetPaths() {
		fmt.Fprintf(&b, "  %s\n", nvmeConnect(e, p))
	}
	if len(pending) > 0 {
		fmt.Fprintf(&b, "\nNOT READY after %s — the array has not converged:\n", c.ReadyTimeout)
		for _, p := range pending {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
		fmt.Fprintf(&b, "  (see the agents' logs in %s/logs; the monitor keeps retrying)\n", l.State)
	}
	fmt.Fprintf(&b, "\nProcesses (pid files in %s/run, logs in %s/logs):\n ", l.State, l.State)
	for _, p := range sup.procs {
		fmt.Fprintf(&b, " %s=%d", p.name, p.cmd.Process.Pid)
	}
	vdactl := c.BinDir + "/vdactl"
	how := "TLS with the CA in " + sec.dir
	if sec.insecure {
		how = "PLAINTEXT (--insecure)"
	}
	fmt.Fprintf(&b, "\n\nThe control plane runs over %s; the portal's API takes the admin token in %s.\n", how, sec.tokenFile)
	fmt.Fprintf(&b, "From another terminal (vdactl.json holds the portal's URL, the CA and the token; mode 0600):\n  export VDA_CONFIG=%s\n  %s cluster summary\n  %s da get %s\n  %s exp get --da %s %s\n  %s da create da1 --size 64MiB\n",
		sec.configFile, vdactl, vdactl, daName, vdactl, daName, expName, vdactl)
	if !c.Once {
		fmt.Fprintf(&b, "\nCtrl-C stops the cluster; run again to come back (state in %s).\n", l.State)
	}
	_, err = io.WriteString(w, b.String())
	return err
}
