package connectors

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Params are the decrypted connection parameters of one user database. They
// live only in worker memory and are never logged or serialised.
type Params struct {
	Host             string
	Port             int
	Database         string
	Username         string
	Password         string
	SSL              bool
	SSLCA            string // PEM CA certificates trusted besides the system roots; not secret
	ConnectionString string // MongoDB: the whole URI, which holds the password.
	AllowWrites      bool
}

// String never prints secrets, so a Params that slips into a log line is safe.
func (p Params) String() string {
	ca := "no"
	if p.SSLCA != "" {
		ca = "yes"
	}
	return fmt.Sprintf("Params{host=%s port=%d database=%s user=%s ssl=%t ca=%s writes=%t}",
		p.Host, p.Port, p.Database, p.Username, p.SSL, ca, p.AllowWrites)
}

// GoString hides secrets from %#v too.
func (p Params) GoString() string { return p.String() }

// Field is one input of a database type's connection form, as served by
// GET /api/databases/schema.
type Field struct {
	Name     string `json:"name"`
	Label    string `json:"label"`
	Type     string `json:"type"` // text, textarea, number, password or checkbox
	Required bool   `json:"required,omitempty"`
	Default  any    `json:"default,omitempty"`
}

// Info names a database type.
type Info struct {
	Type        string `json:"db_type"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Order sorts the types list; lower first.
	Order int `json:"-"`
}

// ToolSpec is a template of a tool that every database of a type exposes. The
// tool's name is Prefix + "_" + db_id, e.g. DB_QUERY_db_abc123.
type ToolSpec struct {
	Prefix string
	// Description is a fmt format taking the connection's name and the type's
	// display name, e.g. "Query '%s' (%s)".
	Description string
	// Parameters is the design document's simple parameter map for OA.
	Parameters map[string]string
	// InputSchema is the JSON Schema of the tool's params object.
	InputSchema json.RawMessage
}

// Options configure a Source's pool and limits. They come from server
// configuration, never from the caller.
type Options struct {
	MaxOpen          int           // open connections per Source
	IdleTimeout      time.Duration // idle connections are closed after this
	MaxLifetime      time.Duration // connections are replaced after this (0: never), so a fleet budget rebalances
	StatementTimeout time.Duration // server-side statement timeout
	ConnectTimeout   time.Duration
	Dial             DialContextFunc // enforces the host policy; never nil from the worker
	// Surplus, when set, is asked as a pooled connection is released: true
	// closes it instead of keeping it idle (the worker holds more than its
	// share of a fleet budget). Pools without a release hook rely on
	// MaxLifetime alone.
	Surplus func() bool
}

// DialContextFunc dials a network address.
type DialContextFunc func(ctx context.Context, network, addr string) (netConn, error)

// MaxResultBytes caps the encoded body of one tool call's result, for every
// connector. It sits well below the job bus's maximum payload (8 MiB on the
// embedded server and in deploy/), so that a reply always fits: a larger
// result is cut at a whole row or element and marked truncated.
const MaxResultBytes = 4 << 20

// Limits bound one tool call.
type Limits struct {
	MaxRows int           // rows returned at most; more sets Result.Truncated
	Timeout time.Duration // client deadline for the call
}

// Result is one tool call's answer. Body is the JSON value of the response's
// "result" field, encoded once by the connector, so no later stage re-encodes
// rows.
type Result struct {
	Body      json.RawMessage
	RowCount  int  // rows in Body, when Body is a row array
	Rows      bool // Body is a row array: RowCount is meaningful
	Truncated bool // the row cap cut the result
}

// Driver is one database type. Implementations register themselves with
// Register in an init function.
type Driver interface {
	Info() Info
	Fields() []Field
	Tools() []ToolSpec
	// Validate checks parameters before anything is stored or dialled. Its
	// error is shown to the user.
	Validate(p Params) error
	// Open returns a live, pinged Source for one set of credentials.
	Open(ctx context.Context, p Params, o Options) (Source, error)
}

// Source is a live, pooled connection to one user database.
type Source interface {
	// Run executes the tool named by its prefix (e.g. "DB_QUERY").
	Run(ctx context.Context, tool string, params json.RawMessage, lim Limits) (*Result, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	// OpenConns reports connections currently open, for metrics and tests.
	OpenConns() int
	// Close closes every pooled connection.
	Close()
}

var (
	regMu   sync.RWMutex
	drivers = map[string]Driver{}
)

// Register adds a driver under its type. It panics on a duplicate, as two
// drivers for one type is a programming error.
func Register(d Driver) {
	regMu.Lock()
	defer regMu.Unlock()
	t := d.Info().Type
	if _, dup := drivers[t]; dup {
		panic("connectors: driver registered twice: " + t)
	}
	drivers[t] = d
}

// Lookup finds the driver of a database type.
func Lookup(dbType string) (Driver, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	d, ok := drivers[dbType]
	return d, ok
}

// Drivers lists registered drivers in display order.
func Drivers() []Driver {
	regMu.RLock()
	out := make([]Driver, 0, len(drivers))
	for _, d := range drivers {
		out = append(out, d)
	}
	regMu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Info(), out[j].Info()
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		return a.Type < b.Type
	})
	return out
}

// ParseToolName splits a database tool's name, "DB_QUERY_db_abc", into its
// prefix and db_id ("DB_QUERY", "db_abc"). Other names (app tools) are not ok.
func ParseToolName(action string) (prefix, dbID string, ok bool) {
	if !strings.HasPrefix(action, "DB_") {
		return "", "", false
	}
	i := strings.LastIndex(action, "_db_")
	if i <= 0 || i+4 >= len(action) {
		return "", "", false
	}
	return action[:i], action[i+1:], true
}

// FindTool returns the spec of a tool prefix for a driver.
func FindTool(d Driver, prefix string) (ToolSpec, bool) {
	for _, t := range d.Tools() {
		if t.Prefix == prefix {
			return t, true
		}
	}
	return ToolSpec{}, false
}
