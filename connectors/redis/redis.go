package redis

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Type is the database type this connector registers.
const Type = "redis"

// DefaultPort is Redis's port, used when the form leaves port empty.
const DefaultPort = 6379

// MaxDatabase is the highest logical database index accepted. Redis has 16
// (0-15) unless its "databases" setting raises it.
const MaxDatabase = 255

func init() { connectors.Register(Driver{}) }

// Driver is the Redis database type.
type Driver struct{}

// Info names the type.
func (Driver) Info() connectors.Info {
	return connectors.Info{
		Type:        Type,
		Name:        "Redis",
		Description: "Redis key-value store: run read commands (GET, HGETALL, LRANGE, SCAN …) and list keys",
		Order:       3,
	}
}

// Fields is the connection form: host, port, password as in the design
// document, plus an optional ACL username, logical database and TLS.
func (Driver) Fields() []connectors.Field {
	return []connectors.Field{
		{Name: "connection_name", Label: "Connection Name", Type: "text", Required: true},
		{Name: "host", Label: "Host", Type: "text", Required: true},
		{Name: "port", Label: "Port", Type: "number", Default: DefaultPort},
		{Name: "username", Label: "Username (Redis 6+ ACL, optional)", Type: "text"},
		{Name: "password", Label: "Password", Type: "password"},
		{Name: "database", Label: "Database Number", Type: "number", Default: 0},
		{Name: "ssl", Label: "SSL/TLS", Type: "checkbox", Default: false},
		connectors.CAField,
	}
}

var queryInputSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "command": {
      "type": "string",
      "description": "The Redis command. Either only its name (e.g. \"HGETALL\") with the arguments in args, or a whole command line as typed in redis-cli (e.g. \"HGETALL user:42\" or \"LRANGE queue 0 9\"). In a command line, quote an argument that contains spaces with double quotes (backslash escapes such as \\n, \\\" and \\x41 work inside them) or with single quotes."
    },
    "args": {
      "type": "array",
      "items": {"type": ["string", "number"]},
      "description": "Optional arguments, appended after the words of command. Use it for keys or values containing spaces or quotes, e.g. {\"command\": \"GET\", \"args\": [\"my key\"]}."
    }
  },
  "required": ["command"],
  "additionalProperties": false
}`)

var listKeysInputSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "pattern": {
      "type": "string",
      "description": "Glob-style pattern the keys must match (SCAN MATCH), e.g. \"user:*\". Default \"*\" (all keys)."
    },
    "type": {
      "type": "string",
      "enum": ["string", "list", "set", "zset", "hash", "stream"],
      "description": "Only list keys of this type."
    },
    "count": {
      "type": "integer",
      "minimum": 1,
      "description": "About how many keys to return (default 100; the server caps it). A page may hold slightly more."
    },
    "cursor": {
      "type": "string",
      "description": "The cursor a previous call returned, to get the next page. \"0\" (the default) starts from the beginning. A returned cursor of \"0\" (done: true) means the listing is complete."
    }
  },
  "additionalProperties": false
}`)

// Tools are DB_QUERY (one command) and DB_LIST_KEYS (SCAN).
func (Driver) Tools() []connectors.ToolSpec {
	return []connectors.ToolSpec{
		{
			Prefix: "DB_QUERY",
			Description: "Run a Redis command on '%s' (%s), e.g. GET key, HGETALL key, LRANGE key 0 99, " +
				"ZRANGE key 0 9 WITHSCORES, SCAN 0 MATCH user:* COUNT 100. Read-only connections accept only " +
				"read commands; KEYS is refused (use SCAN or DB_LIST_KEYS). Binary values come back as {\"$base64\": …}.",
			Parameters: map[string]string{
				"command": "string (Redis command, e.g. GET key)",
				"args":    "array of strings (optional)",
			},
			InputSchema: queryInputSchema,
		},
		{
			Prefix:      "DB_LIST_KEYS",
			Description: "List keys of '%s' (%s) with their types, using SCAN with an optional pattern (e.g. user:*); page with the returned cursor.",
			Parameters: map[string]string{
				"pattern": "string (optional glob pattern, e.g. user:*)",
				"type":    "string (optional: string, list, set, zset, hash or stream)",
				"count":   "integer (optional, keys per page, default 100)",
				"cursor":  "string (optional, cursor from the previous page; default 0)",
			},
			InputSchema: listKeysInputSchema,
		},
	}
}

// Validate checks the host, port and logical database before anything is
// stored or dialled.
func (Driver) Validate(p connectors.Params) error {
	if err := validateHost(p.Host); err != nil {
		return err
	}
	if p.Port < 0 || p.Port > 65535 {
		return connectors.Errorf(connectors.KindInput, "port %d is out of range (1-65535)", p.Port)
	}
	if _, err := parseDatabase(p.Database); err != nil {
		return err
	}
	return nil
}

func validateHost(h string) error {
	switch {
	case strings.TrimSpace(h) == "":
		return connectors.Errorf(connectors.KindInput, "host is required")
	case strings.Contains(h, "://"):
		return connectors.Errorf(connectors.KindInput, "host must be a host name or IP address, not a URL")
	case len(h) > 253:
		return connectors.Errorf(connectors.KindInput, "host name is too long")
	case strings.ContainsAny(h, " \t\r\n/@?#"):
		return connectors.Errorf(connectors.KindInput, "host %q is not a valid host name or IP address", h)
	}
	if strings.Contains(h, ":") {
		// Only an IPv6 literal may contain colons; host:port belongs in port.
		if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err != nil {
			return connectors.Errorf(connectors.KindInput, "host %q must not include a port; use the port field", h)
		}
	}
	return nil
}

func parseDatabase(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxDatabase {
		return 0, connectors.Errorf(connectors.KindInput,
			"database must be a Redis database number from 0 to %d (usually 0-15), not %q", MaxDatabase, s)
	}
	return n, nil
}

// Open connects and pings. A wrong password is KindAuth, a refused address
// KindPolicy, an unreachable server KindUnavailable.
func (d Driver) Open(ctx context.Context, p connectors.Params, o connectors.Options) (connectors.Source, error) {
	if err := d.Validate(p); err != nil {
		return nil, err
	}
	db, _ := parseDatabase(p.Database)
	port := p.Port
	if port == 0 {
		port = DefaultPort
	}
	host := strings.Trim(p.Host, "[]")
	addr := net.JoinHostPort(host, strconv.Itoa(port))

	dial := o.Dial
	if dial == nil {
		nd := &net.Dialer{Timeout: o.ConnectTimeout}
		dial = nd.DialContext
	}
	dialer := func(ctx context.Context, network, a string) (net.Conn, error) {
		return dial(ctx, network, a)
	}
	if p.SSL {
		cfg, err := connectors.TLSConfig(p, host)
		if err != nil {
			return nil, err
		}
		dialer = tlsDialer(dial, cfg)
	}
	// The RESP guard sits on the plaintext stream, below go-redis's reader.
	plain := dialer
	dialer = func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := plain(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return guardRESP(c), nil
	}

	poolSize := o.MaxOpen
	if poolSize <= 0 {
		poolSize = 1
	}
	opt := &goredis.Options{
		Addr:     addr,
		Username: p.Username,
		Password: p.Password,
		DB:       db,
		// RESP3 returns hashes as maps and doubles as doubles.
		Protocol:        3,
		Dialer:          dialer,
		DialTimeout:     o.ConnectTimeout,
		PoolSize:        poolSize,
		ConnMaxIdleTime: o.IdleTimeout,
		ConnMaxLifetime: o.MaxLifetime,
		// Honour the call's deadline on socket reads and writes too.
		ContextTimeoutEnabled: true,
		// Never retry: a retried write could apply twice.
		MaxRetries: -1,
		// One retry of a failed dial; a refused address fails the same way.
		DialerRetries:   2,
		DisableIdentity: true,
	}
	if o.StatementTimeout > 0 {
		opt.ReadTimeout = o.StatementTimeout
		opt.WriteTimeout = o.StatementTimeout
	}
	if o.IdleTimeout <= 0 {
		opt.ConnMaxIdleTime = 0 // go-redis default (30 minutes)
	}

	s := &source{
		client: goredis.NewClient(opt),
		addr:   addr,
		writes: p.AllowWrites,
	}
	pingCtx := ctx
	if o.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		pingCtx, cancel = context.WithTimeout(ctx, 2*o.ConnectTimeout)
		defer cancel()
	}
	if err := s.client.Ping(pingCtx).Err(); err != nil {
		_ = s.client.Close()
		return nil, s.classify(err, true)
	}
	return s, nil
}

// tlsDialer dials through dial and runs a TLS handshake with cfg, which
// verifies the server's certificate.
func tlsDialer(dial connectors.DialContextFunc, cfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := tls.Client(raw, cfg)
		if err := c.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return c, nil
	}
}

// classify turns a go-redis error into a connectors.Error. opening is true
// while Open pings, when a timeout means the server is unreachable rather
// than that a command was slow.
func (s *source) classify(err error, opening bool) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return ce
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		switch {
		case strings.HasPrefix(msg, "NOAUTH"), strings.HasPrefix(msg, "WRONGPASS"),
			strings.Contains(msg, "invalid password"), strings.Contains(msg, "invalid username-password"),
			opening && strings.HasPrefix(msg, "ERR AUTH"):
			return &connectors.Error{Kind: connectors.KindAuth, Msg: "redis refused the credentials: " + msg, Err: err}
		case strings.HasPrefix(msg, "LOADING"), strings.HasPrefix(msg, "BUSY"),
			strings.HasPrefix(msg, "MASTERDOWN"), strings.HasPrefix(msg, "TRYAGAIN"),
			strings.HasPrefix(msg, "CLUSTERDOWN"):
			return &connectors.Error{Kind: connectors.KindUnavailable, Msg: "redis is not ready: " + msg, Err: err}
		}
		return &connectors.Error{Kind: connectors.KindQuery, Msg: msg, Err: err}
	}
	if ce := connectors.CertError(err, "redis"); ce != nil {
		return ce
	}
	var ne net.Error
	timedOut := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	switch {
	case timedOut && !opening:
		return &connectors.Error{Kind: connectors.KindTimeout, Msg: "redis command timed out", Err: err}
	case timedOut:
		return &connectors.Error{Kind: connectors.KindUnavailable, Msg: "timed out connecting to redis at " + s.addr, Err: err}
	case errors.Is(err, context.Canceled):
		return &connectors.Error{Kind: connectors.KindUnavailable, Msg: "redis call cancelled", Err: err}
	case errors.Is(err, goredis.ErrPoolTimeout):
		return &connectors.Error{Kind: connectors.KindUnavailable, Msg: "all connections to redis are busy", Err: err}
	}
	return &connectors.Error{Kind: connectors.KindUnavailable, Msg: fmt.Sprintf("cannot reach redis at %s: %v", s.addr, err), Err: err}
}
