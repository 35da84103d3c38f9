package postgres

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/sqlconn"
)

// Type is the db_type of PostgreSQL databases.
const Type = "postgres"

// ApplicationName is the application_name of every connection the connector
// opens, so a DBA can see (and limit) this service in pg_stat_activity.
const ApplicationName = "mcp-integration-service"

const (
	defaultConnectTimeout = 10 * time.Second
	cleanupTimeout        = 5 * time.Second
	// maxMessageBytes caps one protocol message from the server. The
	// driver allocates a message's declared length before reading it, so a
	// hostile server could otherwise make it allocate up to 1 GiB per
	// connection. A result is capped far lower (connectors.MaxResultBytes),
	// so a row this large could never be returned anyway.
	maxMessageBytes = 64 << 20
)

// buildFrontend is pgproto3.NewFrontend with maxMessageBytes as its limit.
func buildFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	f := pgproto3.NewFrontend(r, w)
	f.SetMaxBodyLen(maxMessageBytes)
	return f
}

// Driver is the PostgreSQL connector. It registers itself under "postgres".
type Driver struct{}

func init() { connectors.Register(Driver{}) }

// Info names the type.
func (Driver) Info() connectors.Info {
	return connectors.Info{
		Type:        Type,
		Name:        "PostgreSQL",
		Description: "Query a PostgreSQL database with SQL. Read-only unless writes are allowed.",
		Order:       1,
	}
}

// Fields is the connection form.
func (Driver) Fields() []connectors.Field { return sqlconn.Fields(5432) }

// Tools are DB_QUERY, DB_LIST_TABLES and DB_DESCRIBE.
func (Driver) Tools() []connectors.ToolSpec { return sqlconn.Tools() }

// Validate checks the parameters before they are stored or dialled.
func (Driver) Validate(p connectors.Params) error { return sqlconn.Validate(p) }

// quote makes a keyword/value connection string value.
func quote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s + "'"
}

// poolConfig builds the pool configuration from structured fields. The
// password is set on the parsed config, never written into a string.
func poolConfig(p connectors.Params, o connectors.Options) (*pgxpool.Config, error) {
	// sslmode=disable keeps pgconn from reading certificate settings from
	// the environment or files; TLS is set up below.
	cs := "host=" + quote(p.Host) + " port=" + strconv.Itoa(p.Port) + " dbname=" + quote(p.Database) +
		" user=" + quote(p.Username) + " sslmode=disable"
	cfg, err := pgxpool.ParseConfig(cs)
	if err != nil {
		return nil, connectors.Errorf(connectors.KindInput, "invalid connection parameters: %s", sqlconn.Scrub(err.Error(), p.Password))
	}
	cc := cfg.ConnConfig
	if p.SSL {
		// libpq's sslmode=verify-full: TLS or nothing, the certificate
		// verified for the host, with the form's CA besides the system roots.
		if cc.TLSConfig, err = connectors.TLSConfig(p, p.Host); err != nil {
			return nil, err
		}
		cc.Fallbacks = nil
	}
	cc.Password = p.Password
	cc.ConnectTimeout = o.ConnectTimeout
	if cc.ConnectTimeout <= 0 {
		cc.ConnectTimeout = defaultConnectTimeout
	}
	if o.Dial != nil {
		cc.DialFunc = pgconn.DialFunc(o.Dial)
	}
	cc.BuildFrontend = buildFrontend
	// On a cancelled or expired context, ask the server to cancel the
	// statement at once (so it stops working), and break the socket a second
	// later if it has not answered. The connection is then discarded.
	cc.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: time.Second}
	}
	cc.ValidateConnect = nil // ignore PGTARGETSESSIONATTRS from the environment
	cc.AfterConnect = nil
	cfg.AfterConnect = nil
	if !p.AllowWrites {
		cfg.AfterConnect = prepareSetup
	}
	params := map[string]string{
		"application_name":   ApplicationName,
		"timezone":           "UTC",
		"datestyle":          "ISO, MDY",
		"intervalstyle":      "postgres",
		"extra_float_digits": "3",
		"bytea_output":       "hex",
		// The read-only guard lexes statements as UTF-8 with standard
		// conforming strings; a server default must not change either.
		"client_encoding":             "UTF8",
		"standard_conforming_strings": "on",
	}
	if o.StatementTimeout > 0 {
		params["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	cc.RuntimeParams = params
	// The extended protocol for every query (one statement only), with no
	// pgx statement cache: the only named statements are a read-only
	// connection's fixed setup and cleanup (prepareSetup) and the callers'
	// statements it prepares itself (userStatement), which recover from a
	// changed table.
	cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	cc.StatementCacheCapacity = 0
	cc.DescriptionCacheCapacity = 0

	cfg.MaxConns = int32(max(o.MaxOpen, 1))
	cfg.MinConns = 0
	cfg.MinIdleConns = 0
	if o.IdleTimeout > 0 {
		cfg.MaxConnIdleTime = o.IdleTimeout
		cfg.HealthCheckPeriod = min(time.Minute, max(o.IdleTimeout/2, time.Second))
	}
	if o.MaxLifetime > 0 {
		cfg.MaxConnLifetime = o.MaxLifetime
		// Idle connections past their lifetime are closed by the health
		// check only: run it often enough for the lifetime to mean something.
		cfg.HealthCheckPeriod = min(cfg.HealthCheckPeriod, max(o.MaxLifetime/2, time.Second))
	}

	return cfg, nil
}

// Open builds the pool and pings the database.
func (Driver) Open(ctx context.Context, p connectors.Params, o connectors.Options) (connectors.Source, error) {
	if err := sqlconn.Validate(p); err != nil {
		return nil, err
	}
	cfg, err := poolConfig(p, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, connectErr(err, p.Password)
	}
	s := &Source{pool: pool, writes: p.AllowWrites, stmtTimeout: o.StatementTimeout, password: p.Password, surplus: o.Surplus}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout+time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, connectErr(err, p.Password)
	}
	return s, nil
}

// connectErr classifies a failure to open a connection.
func connectErr(err error, password string) error {
	var ce *connectors.Error
	if errors.As(err, &ce) && ce.Kind == connectors.KindPolicy {
		return &connectors.Error{Kind: connectors.KindPolicy, Msg: sqlconn.Scrub(ce.Msg, password), Err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := "cannot connect to PostgreSQL: " + sqlconn.Scrub(pe.Error(), password)
		switch {
		case strings.HasPrefix(pe.Code, "28"), pe.Code == "3D000", pe.Code == "42501", pe.Code == "0A000":
			return &connectors.Error{Kind: connectors.KindAuth, Msg: msg, Err: err}
		default:
			return &connectors.Error{Kind: connectors.KindUnavailable, Msg: msg, Err: err}
		}
	}
	if tooLarge(err) {
		return &connectors.Error{Kind: connectors.KindUnavailable, Err: err, Msg: tooLargeMsg}
	}
	if ce := connectors.CertError(err, "PostgreSQL"); ce != nil {
		return ce
	}
	msg := sqlconn.Scrub(err.Error(), password)
	if strings.Contains(msg, "server refused TLS connection") {
		return &connectors.Error{Kind: connectors.KindAuth, Err: err,
			Msg: "cannot connect to PostgreSQL: the server does not accept SSL; turn off SSL Required"}
	}
	return &connectors.Error{Kind: connectors.KindUnavailable, Msg: "cannot reach PostgreSQL: " + msg, Err: err}
}

const tooLargeMsg = "PostgreSQL server sent a protocol message over the 64 MiB limit; the connection was closed"

// tooLarge reports a server message over maxMessageBytes.
func tooLarge(err error) bool {
	var e *pgproto3.ExceededMaxBodyLenErr
	return errors.As(err, &e)
}
