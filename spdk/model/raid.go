package model

import (
	"context"
	"slices"
	"strings"
)

// The raid module: raid0, raid1 and concat over member bdevs that may
// appear after the raid is created.

const (
	raidOnline      = "online"
	raidConfiguring = "configuring"
	raidOffline     = "offline"
)

// raid is one raid bdev. It claims its members exclusive_write; it is a
// bdev itself only while online.
type raid struct {
	name       string
	uuid       string // zero while configuring, unless given
	level      string // "raid0", "raid1" or "concat"
	stripKB    uint32
	superblock bool
	state      string
	slots      []*raidSlot
	bdev       *bdev // while online
}

// raidSlot is one member position.
type raidSlot struct {
	// name is the member name as given (it may be an alias); nil once the
	// member was removed.
	name       *string
	b          *bdev
	configured bool
	dataSize   uint64
}

func (r *raid) discovered() int {
	n := 0
	for _, s := range r.slots {
		if s.configured {
			n++
		}
	}
	return n
}

// operational counts the members the raid can still use: configured ones,
// plus missing ones that may still appear while configuring.
func (r *raid) operational() int {
	if r.state == raidConfiguring {
		return len(r.slots)
	}
	return r.discovered()
}

// examine claims a newly registered bdev that a configuring raid waits for
// (by its name, uuid or an alias) and brings the raid online once every
// member is there.
func (r *raid) examine(t *Target, b *bdev) {
	if r.state != raidConfiguring {
		return
	}
	for _, s := range r.slots {
		if s.configured || s.name == nil || !slices.Contains(b.keys(), *s.name) {
			continue
		}
		if !t.claimBdev(b, claimExclusiveWrite, r) {
			return
		}
		s.b, s.configured, s.dataSize = b, true, b.numBlocks
		break
	}
	t.raidTryOnline(r)
}

// raidTryOnline registers the raid's bdev once all members are configured.
func (t *Target) raidTryOnline(r *raid) {
	if r.state != raidConfiguring || r.discovered() != len(r.slots) {
		return
	}
	// Members must share a block size.
	bs := r.slots[0].b.blockSize
	for _, s := range r.slots {
		if s.b.blockSize != bs {
			return
		}
	}
	var blocks uint64
	stripBlocks := uint64(r.stripKB) * 1024 / uint64(bs)
	minSize := r.slots[0].dataSize
	for _, s := range r.slots {
		minSize = min(minSize, s.dataSize)
	}
	switch r.level {
	case "raid0":
		per := minSize / stripBlocks * stripBlocks
		for _, s := range r.slots {
			s.dataSize = per
		}
		blocks = per * uint64(len(r.slots))
	case "concat":
		for _, s := range r.slots {
			s.dataSize = s.dataSize / stripBlocks * stripBlocks
			blocks += s.dataSize
		}
	case "raid1":
		for _, s := range r.slots {
			s.dataSize = minSize
		}
		blocks = minSize
	}
	if r.uuid == zeroUUID {
		r.uuid = newUUID()
	}
	r.state = raidOnline
	r.bdev = &bdev{name: r.name, aliases: []string{r.uuid}, uuid: r.uuid, blockSize: bs, numBlocks: blocks, module: r}
	if err := t.register(r.bdev); err != nil {
		// The raid's name or uuid is taken by another bdev: it cannot be
		// registered, and stays configured but not a bdev.
		r.bdev = nil
	}
}

// hotRemove: a member went away. raid0 and concat go offline and stop
// being a bdev; raid1 degrades, and vanishes with its last member.
func (r *raid) hotRemove(t *Target, b *bdev) {
	for _, s := range r.slots {
		if s.b != b {
			continue
		}
		s.b, s.name, s.configured = nil, nil, false
		if r.state == raidConfiguring {
			s.dataSize = 0
		}
	}
	switch {
	case r.state == raidConfiguring:
	case r.level == "raid1" && r.discovered() > 0:
	case r.level == "raid1":
		t.destroyRaid(r)
	default:
		r.state = raidOffline
		if r.bdev != nil {
			rb := r.bdev
			r.bdev = nil
			t.unregister(rb)
		}
	}
}

// destroyRaid unregisters the raid and releases its members.
func (t *Target) destroyRaid(r *raid) {
	if r.bdev != nil {
		rb := r.bdev
		r.bdev = nil
		t.unregister(rb)
	}
	for _, s := range r.slots {
		if s.b != nil {
			s.b.release(r)
		}
	}
	t.raids = slices.DeleteFunc(t.raids, func(x *raid) bool { return x == r })
}

// raid as a bdev module.

func (r *raid) moduleName() string  { return "raid" }
func (r *raid) productName() string { return "Raid Volume" }
func (r *raid) hasNuma() bool       { return false }
func (r *raid) ioTypes() ioTypes {
	return ioTypes{Read: true, Write: true, Unmap: true, Flush: true, Reset: true, WriteZeroes: true}
}
func (r *raid) memoryDomains() []string { return r.baseDomains() }
func (r *raid) baseDomains() []string {
	var ds []string
	for _, s := range r.slots {
		if s.b != nil {
			ds = append(ds, s.b.module.baseDomains()...)
		}
	}
	return ds
}

func (r *raid) driverSpecific(*Target) any {
	j := r.json()
	j.Name = ""
	return struct {
		Raid raidJSON `json:"raid"`
	}{j}
}

type raidJSON struct {
	Name                    string         `json:"name,omitempty"`
	UUID                    string         `json:"uuid"`
	StripSizeKB             uint32         `json:"strip_size_kb"`
	State                   string         `json:"state"`
	RaidLevel               string         `json:"raid_level"`
	Superblock              bool           `json:"superblock"`
	NumBaseBdevs            int            `json:"num_base_bdevs"`
	NumBaseBdevsDiscovered  int            `json:"num_base_bdevs_discovered"`
	NumBaseBdevsOperational int            `json:"num_base_bdevs_operational"`
	BaseBdevsList           []raidBaseJSON `json:"base_bdevs_list"`
}

type raidBaseJSON struct {
	Name         *string `json:"name"`
	UUID         string  `json:"uuid"`
	IsConfigured bool    `json:"is_configured"`
	DataOffset   uint64  `json:"data_offset"`
	DataSize     uint64  `json:"data_size"`
}

func (r *raid) json() raidJSON {
	j := raidJSON{Name: r.name, UUID: r.uuid, StripSizeKB: r.stripKB, State: r.state, RaidLevel: r.level,
		Superblock: r.superblock, NumBaseBdevs: len(r.slots), NumBaseBdevsDiscovered: r.discovered(),
		NumBaseBdevsOperational: r.operational(), BaseBdevsList: []raidBaseJSON{}}
	for _, s := range r.slots {
		e := raidBaseJSON{Name: s.name, UUID: zeroUUID, IsConfigured: s.configured, DataSize: s.dataSize}
		if s.b != nil {
			e.UUID = s.b.uuid
		}
		j.BaseBdevsList = append(j.BaseBdevsList, e)
	}
	return j
}

// raidLevel maps the accepted raid_level spellings to SPDK's names; ok is
// false for a value the decoder rejects.
func raidLevel(s string) (level string, ok bool) {
	switch strings.ToLower(s) {
	case "raid0", "0":
		return "raid0", true
	case "raid1", "1":
		return "raid1", true
	case "raid5f", "5f":
		return "raid5f", true
	case "concat":
		return "concat", true
	}
	return "", false
}

// bdevRaidCreate: bdev_raid_create {name, raid_level, base_bdevs,
// strip_size_kb?, uuid?, superblock?}. Missing members are accepted.
func bdevRaidCreate(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name        string   `json:"name"`
		RaidLevel   string   `json:"raid_level"`
		BaseBdevs   []string `json:"base_bdevs"`
		StripSizeKB uint32   `json:"strip_size_kb"`
		UUID        string   `json:"uuid"`
		Superblock  bool     `json:"superblock"`
	}
	if err := r.decode(&p, "name", "raid_level", "base_bdevs"); err != nil {
		return nil, err
	}
	level, ok := raidLevel(p.RaidLevel)
	if !ok || len(p.BaseBdevs) > 255 {
		return nil, r.decodeErr()
	}
	fail := func(code int) error {
		return r.errf(code, "Failed to create RAID bdev %s: %s", p.Name, strerror(code))
	}
	if slices.ContainsFunc(t.raids, func(x *raid) bool { return x.name == p.Name }) {
		return nil, fail(eEXIST)
	}
	switch {
	case level == "raid1" && p.StripSizeKB != 0:
		return nil, fail(eINVAL)
	case level != "raid1" && (p.StripSizeKB == 0 || p.StripSizeKB&(p.StripSizeKB-1) != 0):
		return nil, fail(eINVAL)
	case level == "raid5f": // not built into nvmf_tgt
		return nil, fail(eINVAL)
	case len(p.BaseBdevs) == 0 || (level == "raid1" && len(p.BaseBdevs) < 2):
		return nil, fail(eINVAL)
	}
	u := zeroUUID
	if p.UUID != "" {
		var ok bool
		if u, ok = canonicalUUID(p.UUID); !ok {
			return nil, r.decodeErr()
		}
	}
	rd := &raid{name: p.Name, uuid: u, level: level, stripKB: p.StripSizeKB, superblock: p.Superblock,
		state: raidConfiguring}
	for _, name := range p.BaseBdevs {
		if slices.ContainsFunc(rd.slots, func(s *raidSlot) bool { return s.name != nil && *s.name == name }) {
			rd.release()
			return nil, fail(eEXIST)
		}
		s := &raidSlot{name: &name}
		if b := t.lookup(name); b != nil {
			if !t.claimBdev(b, claimExclusiveWrite, rd) {
				rd.release()
				return nil, fail(ePERM)
			}
			s.b, s.configured, s.dataSize = b, true, b.numBlocks
		}
		rd.slots = append(rd.slots, s)
	}
	t.raids = append(t.raids, rd)
	t.raidTryOnline(rd)
	return true, nil
}

// release drops the claims taken by a raid that failed to be created.
func (r *raid) release() {
	for _, s := range r.slots {
		if s.b != nil {
			s.b.release(r)
		}
	}
}

// bdevRaidDelete: bdev_raid_delete {name}, in any state.
func bdevRaidDelete(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := r.decode(&p, "name"); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(t.raids, func(x *raid) bool { return x.name == p.Name })
	if i < 0 {
		return nil, r.errf(eNODEV, "raid bdev %s not found", p.Name)
	}
	t.destroyRaid(t.raids[i])
	return true, nil
}

// bdevRaidGetBdevs: bdev_raid_get_bdevs {category}, where category is
// all, online, configuring or offline.
func bdevRaidGetBdevs(_ context.Context, t *Target, r *request) (any, error) {
	var p struct {
		Category string `json:"category"`
	}
	if err := r.decode(&p, "category"); err != nil {
		return nil, err
	}
	switch p.Category {
	case "all", raidOnline, raidConfiguring, raidOffline:
	default:
		return nil, r.decodeErr()
	}
	out := []raidJSON{}
	for _, rd := range t.raids {
		if p.Category == "all" || p.Category == rd.state {
			out = append(out, rd.json())
		}
	}
	return out, nil
}
