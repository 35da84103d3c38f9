package mysql

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/connectors/sqlconn"
)

// Type is the db_type of MySQL and MariaDB databases.
const Type = "mysql"

// ProgramName is sent as the program_name connection attribute, so a DBA
// can see this service in performance_schema.session_connect_attrs.
const ProgramName = "mcp-integration-service"

const (
	defaultConnectTimeout = 10 * time.Second
	cleanupTimeout        = 5 * time.Second
)

// Driver is the MySQL connector. It registers itself under "mysql" and
// serves MySQL 5.7+, MySQL 8 and MariaDB 10.3+.
type Driver struct{}

func init() { connectors.Register(Driver{}) }

// Info names the type.
func (Driver) Info() connectors.Info {
	return connectors.Info{
		Type:        Type,
		Name:        "MySQL",
		Description: "Query a MySQL or MariaDB database with SQL. Read-only unless writes are allowed.",
		Order:       2,
	}
}

// Fields is the connection form.
func (Driver) Fields() []connectors.Field { return sqlconn.Fields(3306) }

// Tools are DB_QUERY, DB_LIST_TABLES and DB_DESCRIBE.
func (Driver) Tools() []connectors.ToolSpec { return sqlconn.Tools() }

// Validate checks the parameters before they are stored or dialled.
func (Driver) Validate(p connectors.Params) error { return sqlconn.Validate(p) }

// pinnedSQLMode is the session sql_mode: the server's, without the modes
// that change how text splits into strings and names, so the server reads
// statements the way the read-only guard does (see CheckReadOnly).
// ANSI_QUOTES goes before ANSI, the combination mode that implies it; no
// other mode name contains either word.
const pinnedSQLMode = "(SELECT REPLACE(REPLACE(REPLACE(@@SESSION.sql_mode, " +
	"'ANSI_QUOTES', ''), 'ANSI', ''), 'NO_BACKSLASH_ESCAPES', ''))"

// config builds the driver configuration from structured fields; the
// password never passes through a DSN string.
func config(p connectors.Params, o connectors.Options) (*gomysql.Config, error) {
	cfg := gomysql.NewConfig()
	cfg.User = p.Username
	cfg.Passwd = p.Password
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
	cfg.DBName = p.Database
	cfg.Timeout = o.ConnectTimeout
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultConnectTimeout
	}
	// A per-config dial function: o.Dial enforces the host policy on the
	// address actually dialled, and unlike mysql.RegisterDialContext it
	// leaves no global registration behind when the Source closes. Open
	// caps every connection's replies (see cappedConn).
	dial := o.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: cfg.Timeout}
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}
	}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dial(ctx, network, addr)
	}
	cfg.MaxAllowedPacket = maxAllowedPacket
	if p.SSL {
		// TLS or nothing (no plaintext fallback), the certificate verified
		// for the host. Only then may the password go in clear (for the
		// mysql_clear_password plugin): the channel is verified.
		tc, err := connectors.TLSConfig(p, p.Host)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
		cfg.AllowCleartextPasswords = true
	}
	cfg.MultiStatements = false // "COMMIT; DROP …" is a syntax error
	cfg.InterpolateParams = false
	cfg.ParseTime = false // values are formatted from the server's text
	cfg.AllowAllFiles = false
	cfg.ConnectionAttributes = "program_name:" + ProgramName
	cfg.Params = map[string]string{"time_zone": "'+00:00'", "sql_mode": pinnedSQLMode}
	return cfg, nil
}

// Open builds the pool, pings the database and detects MySQL or MariaDB.
func (Driver) Open(ctx context.Context, p connectors.Params, o connectors.Options) (connectors.Source, error) {
	if err := sqlconn.Validate(p); err != nil {
		return nil, err
	}
	cfg, err := config(p, o)
	if err != nil {
		return nil, err
	}
	tooLarge := new(atomic.Bool)
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &cappedConn{Conn: c, tripped: tooLarge}, nil
	}
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, connectors.Errorf(connectors.KindInput, "invalid connection parameters: %s", sqlconn.Scrub(err.Error(), p.Password))
	}
	idc := idConnector{conn}
	db := sql.OpenDB(idc)
	n := max(o.MaxOpen, 1)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if o.MaxLifetime > 0 {
		db.SetConnMaxLifetime(o.MaxLifetime)
	}
	if o.IdleTimeout > 0 {
		db.SetConnMaxIdleTime(o.IdleTimeout)
	}
	s := &Source{db: db, connector: idc, tooLarge: tooLarge, writes: p.AllowWrites, stmtTimeout: o.StatementTimeout, password: p.Password}
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout+time.Second)
	defer cancel()
	var version string
	if err := db.QueryRowContext(pctx, "SELECT VERSION()").Scan(&version); err != nil {
		_ = db.Close()
		if tooLarge.Load() {
			err = errReplyTooLarge
		}
		return nil, connectErr(err, p.Password)
	}
	s.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	return s, nil
}

// authErrors are server errors that mean the credentials, database or
// account are wrong.
var authErrors = map[uint16]bool{
	1044: true, // access denied to database
	1045: true, // access denied (bad user or password)
	1049: true, // unknown database
	1129: true, // host blocked
	1130: true, // host not allowed
	1251: true, // client does not support the authentication protocol
	1524: true, // plugin not loaded
	1698: true, // access denied (no password)
	3118: true, // account locked
	3159: true, // secure transport required
	3162: true, // user has no privilege to connect (MySQL)
	4151: true, // account locked (MariaDB)
}

// connectErr classifies a failure to open a connection.
func connectErr(err error, password string) error {
	var ce *connectors.Error
	if errors.As(err, &ce) && ce.Kind == connectors.KindPolicy {
		return &connectors.Error{Kind: connectors.KindPolicy, Msg: sqlconn.Scrub(ce.Msg, password), Err: err}
	}
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		msg := "cannot connect to MySQL: " + sqlconn.Scrub(me.Error(), password)
		if authErrors[me.Number] {
			return &connectors.Error{Kind: connectors.KindAuth, Msg: msg, Err: err}
		}
		return &connectors.Error{Kind: connectors.KindUnavailable, Msg: msg, Err: err}
	}
	if ce := connectors.CertError(err, "MySQL"); ce != nil {
		return ce
	}
	if errors.Is(err, gomysql.ErrNoTLS) {
		return &connectors.Error{Kind: connectors.KindAuth, Err: err,
			Msg: "cannot connect to MySQL: the server does not accept SSL; turn off SSL Required"}
	}
	return &connectors.Error{Kind: connectors.KindUnavailable, Err: err,
		Msg: "cannot reach MySQL: " + sqlconn.Scrub(err.Error(), password)}
}
