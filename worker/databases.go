package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"github.com/openanalyst/mcp-integration-service/budget"
	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// Limits are the server's bounds on database tool calls.
type Limits struct {
	DefaultRows  int
	MaxRows      int
	QueryTimeout time.Duration
}

// Databases runs database tools and connection tests.
type Databases struct {
	Store  storage.Store
	Ring   *keyring.Keyring
	Pools  *Pools
	Limits Limits
	// Options are the pool settings and host policy of every Source.
	Options connectors.Options
	// Budget, when set, caps the connections the whole fleet opens to each
	// database (MCP_DB_MAX_CONNECTIONS): every connection holds a lease.
	Budget *budget.Budget

	// lookups shares one storage read among the jobs that need the same
	// record at once. When the pool cache's ownership check expires (every
	// 30 s) under load, every job in flight for the database asks at the same
	// moment: one read each made the storage client open a connection per job
	// (two file descriptors each with the embedded FerretDB).
	lookups singleflight.Group
}

// A budgeted connection beyond its worker's share (workers joined) is closed
// as soon as it is released, where the pool can tell (PostgreSQL); one idle
// for budgetIdle is closed by the pool, giving its lease back; and every one
// is replaced after budgetLifetime, so that the shares follow workers joining
// and leaving also in pools that cannot tell. Replacing connections more
// often costs every busy handler a wait for the lease it just gave back.
const (
	budgetIdle     = 10 * time.Second
	budgetLifetime = time.Minute
)

// ParamsOf opens a stored record's credentials.
func ParamsOf(rec *storage.Database, ring *keyring.Keyring) (connectors.Params, error) {
	p := connectors.Params{Host: rec.Host, Port: rec.Port, Database: rec.Database, Username: rec.Username,
		SSL: rec.SSL, SSLCA: rec.SSLCA, AllowWrites: rec.AllowWrites}
	if rec.Password != "" {
		b, err := ring.OpenBound(storage.CredentialBinding(rec, storage.FieldPassword), rec.Password)
		if err != nil {
			return p, err
		}
		p.Password = string(b)
	}
	if rec.ConnectionString != "" {
		b, err := ring.OpenBound(storage.CredentialBinding(rec, storage.FieldConnectionString), rec.ConnectionString)
		if err != nil {
			return p, err
		}
		p.ConnectionString = string(b)
	}
	return p, nil
}

// Executors routes execute jobs: database tools (DB_*_db_…) to Databases,
// every other tool to Apps (the Composio tools), if configured.
type Executors struct {
	Databases Handler
	Apps      Handler // may be nil: app tools are then not found
}

// Handle implements Handler.
func (e Executors) Handle(ctx context.Context, job *messages.Job, attempt int) Outcome {
	pl, err := job.Execute()
	if err != nil {
		return Fail("invalid_request", "malformed execute payload")
	}
	if _, _, ok := connectors.ParseToolName(pl.Action); ok || e.Apps == nil {
		return e.Databases.Handle(ctx, job, attempt)
	}
	out := e.Apps.Handle(ctx, job, attempt)
	out.SideEffects = true // an app action (send an email) must not run twice
	return out
}

// Execute runs one execute job of a database tool.
func (d *Databases) Execute(ctx context.Context, job *messages.Job, attempt int) Outcome {
	pl, err := job.Execute()
	if err != nil {
		return Fail("invalid_request", err.Error())
	}
	prefix, dbID, ok := connectors.ParseToolName(pl.Action)
	if !ok {
		return Fail("tool_not_found", fmt.Sprintf("tool %q not found for this user", connectors.Prefix(pl.Action)))
	}
	src, dbType, writes, out := d.source(ctx, job.UserID, dbID, attempt)
	if src == nil {
		return out
	}
	drv, _ := connectors.Lookup(dbType)
	if drv == nil {
		return Fail("tool_not_found", fmt.Sprintf("database type %q is not supported by this worker", dbType))
	}
	if _, ok := connectors.FindTool(drv, prefix); !ok {
		return Fail("tool_not_found", fmt.Sprintf("tool %q not found for this user", pl.Action))
	}
	lim := connectors.Limits{MaxRows: d.rows(pl), Timeout: d.Limits.QueryTimeout}
	qctx, cancel := context.WithTimeout(ctx, d.Limits.QueryTimeout+2*time.Second)
	defer cancel()
	params := pl.Params
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	res, err := src.Run(qctx, prefix, params, lim)
	if err != nil {
		out := connectorOutcome(err, attempt)
		out.SideEffects = writes
		return out
	}
	return Outcome{Body: resultBody(res), SideEffects: writes}
}

func (d *Databases) rows(pl *messages.ExecutePayload) int {
	n := pl.MaxRows
	if n == 0 && mayNameMaxRows(pl.Params) {
		var p struct {
			MaxRows json.Number `json:"max_rows"`
		}
		if json.Unmarshal(pl.Params, &p) == nil {
			if v, err := strconv.Atoi(string(p.MaxRows)); err == nil {
				n = v
			}
		}
	}
	if n <= 0 {
		n = d.Limits.DefaultRows
	}
	return min(n, d.Limits.MaxRows)
}

// mayNameMaxRows reports whether params could hold a "max_rows" key as
// encoding/json matches keys: case-insensitively, through \u escapes, and
// with the Unicode letters that fold to 's' and 'k'. False is exact (no such
// key), so the usual call's params are not decoded here as well as by its
// connector.
func mayNameMaxRows(params []byte) bool {
	for i, c := range params {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
		if c|0x20 == 'm' && i+len(maxRowsKey) <= len(params) && bytes.EqualFold(params[i:i+len(maxRowsKey)], maxRowsKey) {
			return true
		}
	}
	return false
}

var maxRowsKey = []byte("max_rows")

// source finds the open Source of a user's database, loading and checking the
// record when the cache cannot vouch for it.
func (d *Databases) source(ctx context.Context, userID, dbID string, attempt int) (connectors.Source, string, bool, Outcome) {
	if src, e := d.Pools.cached(userID, dbID); src != nil {
		return src, e.dbType, e.writes, Outcome{}
	}
	for range maxStaleReads {
		gen := d.Pools.generation()
		rec, out := d.record(ctx, userID, dbID, gen)
		if rec == nil {
			return nil, "", false, out
		}
		src, out, stale := d.open(ctx, rec, gen, attempt)
		switch {
		case stale:
			continue // a database changed while its record was read: read it again
		case src == nil:
			return nil, "", false, out
		}
		return src, rec.DBType, rec.AllowWrites, Outcome{}
	}
	return nil, "", false, Fail("database_busy", "the database kept changing while this call started; try again")
}

// maxStaleReads bounds how often a job reads its record again because
// databases kept changing meanwhile.
const maxStaleReads = 3

// open returns the Source of a record read at generation gen, or the job's
// answer, or stale when a database changed since (the record is read again).
func (d *Databases) open(ctx context.Context, rec *storage.Database, gen uint64, attempt int) (src connectors.Source, out Outcome, stale bool) {
	drv, ok := connectors.Lookup(rec.DBType)
	if !ok {
		return nil, Fail("database_not_found", fmt.Sprintf("database type %q is not supported", rec.DBType)), false
	}
	src, err := d.Pools.get(ctx, rec, gen, func(ctx context.Context) (connectors.Source, error) {
		p, err := ParamsOf(rec, d.Ring)
		if err != nil {
			return nil, &connectors.Error{Kind: connectors.KindAuth,
				Msg: "stored credentials cannot be decrypted with the configured DB_ENCRYPTION_KEY"}
		}
		o := d.Options
		if d.Budget != nil {
			o.Dial = d.Budget.Dialer(rec.ID, o.Dial)
			o.MaxOpen = min(o.MaxOpen, d.Budget.Max())
			o.IdleTimeout = min(o.IdleTimeout, budgetIdle)
			o.MaxLifetime = budgetLifetime
			o.Surplus = func() bool { return d.Budget.Surplus(rec.ID) }
		}
		octx, cancel := context.WithTimeout(ctx, o.ConnectTimeout+time.Second)
		defer cancel()
		return drv.Open(octx, p, o)
	})
	if errors.Is(err, errStale) {
		return nil, Outcome{}, true
	}
	if err != nil {
		return nil, connectorOutcome(err, attempt), false
	}
	return src, Outcome{}, false
}

// record loads one of a user's saved databases; nil with the caller's answer
// when it cannot.
func (d *Databases) record(ctx context.Context, userID, dbID string, gen uint64) (*storage.Database, Outcome) {
	type lookup struct {
		rec *storage.Database
		err error
	}
	// Not cancelled with the first caller: the others wait for the same
	// read. The store bounds each operation itself, and each caller stops
	// waiting when its own context ends.
	// A job that comes after a change never joins a read from before it.
	ch := d.lookups.DoChan(userID+"\x00"+dbID+"\x00"+strconv.FormatUint(gen, 10), func() (any, error) {
		rec, err := d.Store.GetDatabase(context.WithoutCancel(ctx), userID, dbID)
		return lookup{rec, err}, nil
	})
	var l lookup
	select {
	case r := <-ch:
		l = r.Val.(lookup)
	case <-ctx.Done():
		return nil, Fail("storage_unavailable", "storage did not answer before the call's deadline")
	}
	rec, err := l.rec, l.err
	if rec != nil {
		own := *rec // each caller gets its own copy
		rec = &own
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, Fail("database_not_found", fmt.Sprintf("database %q not found", dbID))
	}
	if err != nil {
		// The caller waits: answer at once rather than retry into its deadline.
		return nil, Fail("storage_unavailable", "storage is unavailable: the database record cannot be read")
	}
	return rec, Outcome{}
}

// Test runs a connection test: open, ping, close. It tests unsaved sealed
// parameters, or the stored credentials of a saved database (pl.DBID).
// Nothing is stored, and nothing is retried: the person waits for the answer.
func (d *Databases) Test(ctx context.Context, job *messages.Job, _ int) Outcome {
	var pl messages.TestPayload
	if err := job.Decode(&pl); err != nil {
		return Fail("invalid_request", err.Error())
	}
	dbType := pl.DBType
	var (
		p   connectors.Params
		out Outcome
	)
	if pl.DBID != "" {
		dbType, p, out = d.saved(ctx, job.UserID, pl.DBID)
	} else {
		p, out = d.unsealed(pl.Sealed)
	}
	if out.Err != nil {
		return out
	}
	drv, ok := connectors.Lookup(dbType)
	if !ok {
		return Fail("unknown_db_type", fmt.Sprintf("unknown db_type %q", dbType))
	}
	o := d.Options
	o.MaxOpen = 1
	octx, cancel := context.WithTimeout(ctx, o.ConnectTimeout+time.Second)
	defer cancel()
	src, err := drv.Open(octx, p, o)
	if err != nil {
		return Fail(codeOf(err), "Connection failed: "+err.Error())
	}
	src.Close()
	return Outcome{Body: []byte(`{"success":true,"message":"Connection successful"}`)}
}

// unsealed opens the parameters of an unsaved connection test.
func (d *Databases) unsealed(sealed string) (connectors.Params, Outcome) {
	var p connectors.Params
	plain, err := d.Ring.Open(sealed)
	if err != nil {
		return p, Fail("invalid_request", "connection parameters cannot be decrypted")
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return p, Fail("invalid_request", "connection parameters are malformed")
	}
	return p, Outcome{}
}

// saved loads a user's saved database and opens its stored credentials.
func (d *Databases) saved(ctx context.Context, userID, dbID string) (string, connectors.Params, Outcome) {
	rec, out := d.record(ctx, userID, dbID, d.Pools.generation())
	if rec == nil {
		return "", connectors.Params{}, out
	}
	p, err := ParamsOf(rec, d.Ring)
	if err != nil {
		return "", p, Fail("connection_failed",
			"Connection failed: stored credentials cannot be decrypted with the configured DB_ENCRYPTION_KEY")
	}
	return rec.DBType, p, Outcome{}
}

func codeOf(err error) string {
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return "connection_failed"
}

// connectorOutcome maps a connector error to the caller's status, retrying
// only infrastructure faults.
func connectorOutcome(err error, attempt int) Outcome {
	var ce *connectors.Error
	if !errors.As(err, &ce) {
		ce = &connectors.Error{Kind: connectors.KindUnavailable, Msg: "database error: " + err.Error()}
	}
	switch ce.Kind {
	case connectors.KindInput:
		return Fail(ce.Code(), ce.Msg)
	case connectors.KindUnavailable, connectors.KindBroker, connectors.KindBusy:
		return RetryLater(ce.Code(), ce.Msg, backoff(attempt))
	default:
		return Fail(ce.Code(), ce.Msg)
	}
}

func backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt-1, 5)
	return min(d, 10*time.Second)
}

// resultBody wraps the connector's pre-encoded result without re-encoding it.
func resultBody(r *connectors.Result) []byte {
	body := r.Body
	if len(body) == 0 {
		body = json.RawMessage("null")
	}
	b := make([]byte, 0, len(body)+64)
	b = append(b, `{"success":true,"result":`...)
	b = append(b, body...)
	if r.Rows {
		b = append(b, `,"row_count":`...)
		b = strconv.AppendInt(b, int64(r.RowCount), 10)
		b = append(b, `,"truncated":`...)
		b = strconv.AppendBool(b, r.Truncated)
	}
	return append(b, '}')
}
