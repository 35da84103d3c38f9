package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/singleflight"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// Tool is one tool of a user: the design document's shape plus the JSON
// Schema of its input.
type Tool struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Provider    string            `json:"provider"`
	Parameters  map[string]string `json:"parameters"`
	InputSchema json.RawMessage   `json:"input_schema"`
}

// Apps is the OAuth side (Composio): the tools of a user's active apps.
type Apps interface {
	Tools(ctx context.Context, userID string) ([]Tool, error)
}

// Filter narrows a tool list. The zero value lists every tool.
type Filter struct {
	Providers []string // only these providers (db_type or app provider)
	DBID      string   // only this saved database's tools
}

func (f Filter) keep(provider string) bool {
	return len(f.Providers) == 0 || slices.Contains(f.Providers, provider)
}

// Config is what the service runs on.
type Config struct {
	Store      storage.Store
	Apps       Apps // nil: no app tools
	Dispatcher *queue.Dispatcher
	Statuses   *queue.Statuses
	NC         *nats.Conn
	JobTimeout time.Duration
	// Audit records each execute; may be nil.
	Audit  func(storage.AuditEntry)
	Logger *slog.Logger
}

// Service lists and runs tools.
type Service struct {
	c      Config
	log    *slog.Logger
	routes routeCache
	sub    *nats.Subscription
}

// New builds the service. It listens for database changes, so that its
// routing cache never outlives an edit.
func New(c Config) (*Service, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = 30 * time.Second
	}
	s := &Service{c: c, log: c.Logger, routes: routeCache{m: map[string]route{}}}
	if c.NC != nil {
		sub, err := c.NC.Subscribe(messages.EventDatabaseChanged, func(m *nats.Msg) { s.routes.forget(string(m.Data)) })
		if err != nil {
			return nil, fmt.Errorf("tools: subscribe to database changes: %w", err)
		}
		s.sub = sub
	}
	return s, nil
}

// ForgetDatabase drops what the service cached about a database (its route)
// at once, without waiting for the change event: the process that edited or
// removed it calls this before it answers.
func (s *Service) ForgetDatabase(dbID string) { s.routes.forget(dbID) }

// Close stops listening for database changes.
func (s *Service) Close() {
	if s.sub != nil {
		_ = s.sub.Unsubscribe()
	}
}

// List returns a user's tools: one set per saved database, then the tools
// of the user's active apps.
func (s *Service) List(ctx context.Context, userID string, f Filter) ([]Tool, error) {
	gen := s.routes.generation()
	dbs, err := s.c.Store.ListDatabases(ctx, userID)
	if err != nil {
		return nil, errorf(CodeStorageUnavailable, "storage is unavailable: the tool list cannot be read")
	}
	tools := []Tool{}
	for _, db := range dbs {
		drv, ok := connectors.Lookup(db.DBType)
		if !ok || !f.keep(db.DBType) || (f.DBID != "" && db.ID != f.DBID) {
			continue
		}
		s.routes.put(gen, db.ID, userID, db.AllowWrites)
		for _, t := range drv.Tools() {
			tools = append(tools, Tool{
				Name:        t.Prefix + "_" + db.ID,
				Description: fmt.Sprintf(t.Description, db.Name, drv.Info().Name),
				Provider:    db.DBType,
				Parameters:  t.Parameters,
				InputSchema: t.InputSchema,
			})
		}
	}
	if s.c.Apps == nil || f.DBID != "" {
		return tools, nil
	}
	apps, err := s.c.Apps.Tools(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, t := range apps {
		if f.keep(t.Provider) {
			tools = append(tools, t)
		}
	}
	return tools, nil
}

// route is what the API node knows of a saved database for routing.
type route struct {
	userID string
	writes bool
	until  time.Time
}

// routeCache remembers which saved databases allow writes, for a short
// while and only until a change event, so that picking a job's class costs
// no storage read on the hot path. Requests that miss it at once (an entry
// expired under load) share one storage read. A record read before a change
// is never cached: every forget counts a change, and put keeps a route only
// if none happened since its read began.
type routeCache struct {
	mu      sync.Mutex
	m       map[string]route
	changes uint64
	reads   singleflight.Group
}

const routeTTL = 30 * time.Second

func (c *routeCache) get(dbID, userID string) (writes, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[dbID]
	if !ok || r.userID != userID || time.Now().After(r.until) {
		return false, false
	}
	return r.writes, true
}

// generation counts the changes so far; read it before reading records.
func (c *routeCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changes
}

// put keeps a route read at generation gen, unless a change came since.
func (c *routeCache) put(gen uint64, dbID, userID string, writes bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changes != gen {
		return
	}
	if len(c.m) > 100_000 {
		clear(c.m) // bounded: a cache, not a store
	}
	c.m[dbID] = route{userID: userID, writes: writes, until: time.Now().Add(routeTTL)}
}

// lookup reads whether a database allows writes, sharing the read with
// every request that needs the same route at the same generation.
func (c *routeCache) lookup(ctx context.Context, store storage.Store, dbID, userID string) (bool, error) {
	gen := c.generation()
	key := strconv.FormatUint(gen, 10) + "\x00" + userID + "\x00" + dbID
	ch := c.reads.DoChan(key, func() (any, error) {
		// Not cancelled with the request that happened to start it; the
		// store bounds it with its own timeout.
		rec, err := store.GetDatabase(context.WithoutCancel(ctx), userID, dbID)
		if err != nil {
			return false, err
		}
		c.put(gen, dbID, userID, rec.AllowWrites)
		return rec.AllowWrites, nil
	})
	select {
	case r := <-ch:
		return r.Val.(bool), r.Err
	case <-ctx.Done(): // this request gives up; the read goes on for the others
		return false, ctx.Err()
	}
}

func (c *routeCache) forget(dbID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changes++
	delete(c.m, dbID)
}
