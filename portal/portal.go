// Package portal is VDA's user-facing API: the Connect-RPC PortalService
// over the store and the allocator.
//
// The contract: every request is validated in full before any transaction
// starts (all problems reported at once, InvalidArgument); each change is one
// store transaction that also increments the generation of every dn and cn
// it touches; placement and the capacity it consumes commit together. The
// portal keeps no state of its own, so any number of portals can serve one
// PostgreSQL or MySQL store. Service methods return errors wrapping the root
// package's sentinels; [NewHandler] maps them to Connect codes.
package portal

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/virtual-disk-array/vda"
	"github.com/virtual-disk-array/vda/proto/vda/v1/vdav1connect"
	"github.com/virtual-disk-array/vda/store"
)

// Config configures a Service.
type Config struct {
	// DB is the cluster's store. Required.
	DB *store.DB
	// Logger receives request logs and internal errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Pusher, if set, delivers the new desired state of every node a change
	// touched right after it commits (best effort: the monitor makes
	// delivery certain). nil: the portal only writes the store.
	Pusher Pusher
	// PushWait is how long a call waits for its pushes before it answers;
	// they go on in the background after that. 0 means 3 s.
	PushWait time.Duration
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, vda.Invalidf("portal: DB is required"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PushWait == 0 {
		c.PushWait = 3 * time.Second
	}
	return c
}

// Service implements vdav1connect.PortalServiceHandler.
type Service struct {
	db       *store.DB
	log      *slog.Logger
	now      func() time.Time
	pusher   Pusher
	pushWait time.Duration
	pushes   sync.WaitGroup
}

var _ vdav1connect.PortalServiceHandler = (*Service)(nil)

// New returns a Service over cfg.DB.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Service{db: cfg.DB, log: cfg.Logger, now: cfg.Now, pusher: cfg.Pusher, pushWait: cfg.PushWait}, nil
}
