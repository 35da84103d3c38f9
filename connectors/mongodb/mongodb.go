package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

// Type is the database type this connector registers.
const Type = "mongodb"

// MaxHosts is the most hosts a connection string may list, or its SRV record
// resolve to.
const MaxHosts = 16

// MaxServers is the most distinct addresses one Source dials: MongoDB's
// largest replica set has 50 members, and a hostile server's hello reply
// could otherwise list thousands for the driver to dial.
const MaxServers = 50

// defaultSelectionTimeout bounds server selection when Options.ConnectTimeout
// is unset.
const defaultSelectionTimeout = 10 * time.Second

func init() { connectors.Register(Driver{}) }

// Driver is the MongoDB database type.
type Driver struct{}

// Info names the type.
func (Driver) Info() connectors.Info {
	return connectors.Info{
		Type:        Type,
		Name:        "MongoDB",
		Description: "MongoDB document database: find, aggregate and count documents, list collections",
		Order:       4,
	}
}

// Fields is the connection form: a single connection string, as in the
// design document, plus an optional database used when the string's path
// names none.
func (Driver) Fields() []connectors.Field {
	return []connectors.Field{
		{Name: "connection_name", Label: "Connection Name", Type: "text", Required: true},
		{Name: "connection_string", Label: "Connection String (mongodb:// or mongodb+srv://, with the database, e.g. …/mydb)", Type: "password", Required: true},
		{Name: "database", Label: "Database (if not in the connection string)", Type: "text"},
		connectors.CAField,
	}
}

var queryInputSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "operation": {
      "type": "string",
      "enum": ["find", "aggregate", "count", "insert", "update", "delete"],
      "description": "What to run. Default: \"aggregate\" when pipeline is given, otherwise \"find\". \"count\" returns {\"count\": n}. insert, update and delete work only on connections that allow writes."
    },
    "collection": {"type": "string", "description": "The collection to query, e.g. \"orders\"."},
    "filter": {
      "type": "object",
      "description": "Query filter in MongoDB Extended JSON, e.g. {\"status\": \"paid\", \"total\": {\"$gt\": 100}, \"_id\": {\"$oid\": \"65a1…\"}, \"created\": {\"$gte\": {\"$date\": \"2024-01-01T00:00:00Z\"}}}. For find, count, update and delete."
    },
    "projection": {"type": "object", "description": "find only: fields to include or exclude, e.g. {\"name\": 1, \"_id\": 0}."},
    "sort": {"type": "object", "description": "find only: sort order, e.g. {\"created\": -1}."},
    "limit": {"type": "integer", "minimum": 0, "description": "find (and count): maximum documents; the server caps results anyway."},
    "skip": {"type": "integer", "minimum": 0, "description": "find (and count): documents to skip."},
    "pipeline": {
      "type": "array",
      "items": {"type": "object"},
      "description": "aggregate only: the stages in Extended JSON, e.g. [{\"$match\": {\"status\": \"paid\"}}, {\"$group\": {\"_id\": \"$customer\", \"total\": {\"$sum\": \"$total\"}}}, {\"$sort\": {\"total\": -1}}]. $out, $merge and server-side JavaScript ($where, $function, $accumulator) are refused on read-only connections."
    },
    "documents": {"type": "array", "items": {"type": "object"}, "description": "insert only: the documents to insert."},
    "update": {"description": "update only: an update document such as {\"$set\": {\"status\": \"shipped\"}}, or an update pipeline (array)."},
    "multi": {"type": "boolean", "description": "update and delete: apply to every matching document instead of the first one."},
    "upsert": {"type": "boolean", "description": "update only: insert a document when none matches."}
  },
  "required": ["collection"],
  "additionalProperties": false
}`)

// Tools are DB_QUERY and DB_LIST_COLLECTIONS.
func (Driver) Tools() []connectors.ToolSpec {
	return []connectors.ToolSpec{
		{
			Prefix: "DB_QUERY",
			Description: "Query '%s' (%s): find documents in a collection with a filter, projection, sort and limit, " +
				"run an aggregation pipeline, or count documents. Values use MongoDB Extended JSON " +
				"({\"$oid\": …}, {\"$date\": …}, {\"$numberDecimal\": …}), in the params and in the results.",
			Parameters: map[string]string{
				"collection": "string (collection name)",
				"operation":  "string (optional: find, aggregate or count; default find, or aggregate when pipeline is given)",
				"filter":     "object (optional, Extended JSON query filter, e.g. {\"status\": \"paid\"})",
				"projection": "object (optional, find: fields to return)",
				"sort":       "object (optional, find: e.g. {\"created\": -1})",
				"limit":      "integer (optional, find: maximum documents)",
				"pipeline":   "array (optional, aggregation stages)",
			},
			InputSchema: queryInputSchema,
		},
		{
			Prefix:      "DB_LIST_COLLECTIONS",
			Description: "List the collections and views of '%s' (%s), with estimated document counts.",
			Parameters:  map[string]string{},
			InputSchema: json.RawMessage(`{"type": "object", "properties": {}, "additionalProperties": false}`),
		},
	}
}

// allowedMechanisms are the authentication mechanisms that use only the
// credentials in the connection string.
var allowedMechanisms = map[string]bool{"": true, "SCRAM-SHA-1": true, "SCRAM-SHA-256": true, "PLAIN": true}

// target is a validated connection string.
type target struct {
	uri      string
	database string
	tls      bool     // mongodb+srv://, tls=true or the form's ssl
	secrets  []string // text an error message must never show
}

// weakTLSOptions would switch off parts of certificate verification, or (the
// revocation check) conflict with the OCSP setting Open pins.
var weakTLSOptions = []string{"tlsInsecure", "sslInsecure", "tlsAllowInvalidCertificates",
	"tlsAllowInvalidHostnames", "tlsDisableOCSPEndpointCheck", "tlsDisableCertificateRevocationCheck"}

// Validate checks the connection string without any network lookup.
func (Driver) Validate(p connectors.Params) error {
	_, err := parseTarget(p)
	return err
}

func parseTarget(p connectors.Params) (*target, error) {
	uri := strings.TrimSpace(p.ConnectionString)
	if uri == "" {
		return nil, connectors.Errorf(connectors.KindInput, "connection_string is required")
	}
	t := &target{uri: uri, secrets: secretsOf(uri)}
	fail := func(format string, args ...any) error {
		e := connectors.Errorf(connectors.KindInput, format, args...)
		e.Msg = t.redact(e.Msg)
		e.Err = nil
		return e
	}
	// Parse mongodb+srv:// as mongodb:// so that validation does no DNS
	// lookup; the SRV and TXT records are read when connecting.
	syntax := uri
	srv := false
	switch {
	case strings.HasPrefix(uri, "mongodb+srv://"):
		srv = true
		syntax = "mongodb://" + strings.TrimPrefix(uri, "mongodb+srv://")
	case strings.HasPrefix(uri, "mongodb://"):
	default:
		return nil, fail("connection_string must start with mongodb:// or mongodb+srv://")
	}
	cs, err := connstring.ParseAndValidate(syntax)
	if err != nil {
		return nil, fail("invalid connection string: %v", err)
	}
	if len(cs.Hosts) == 0 {
		return nil, fail("the connection string names no host")
	}
	if len(cs.Hosts) > MaxHosts {
		return nil, fail("the connection string lists %d hosts; at most %d are allowed", len(cs.Hosts), MaxHosts)
	}
	for _, h := range cs.Hosts {
		if strings.Contains(h, "/") || strings.HasSuffix(h, ".sock") {
			return nil, fail("Unix socket hosts are not allowed; use a TCP host")
		}
		host := h
		if hh, _, err := net.SplitHostPort(h); err == nil {
			host = hh
		}
		if host == "" {
			return nil, fail("the connection string has an empty host")
		}
	}
	if srv {
		if len(cs.Hosts) != 1 {
			return nil, fail("a mongodb+srv:// connection string must name exactly one host")
		}
		if _, _, err := net.SplitHostPort(cs.Hosts[0]); err == nil {
			return nil, fail("a mongodb+srv:// host must not have a port")
		}
	}
	if !allowedMechanisms[strings.ToUpper(cs.AuthMechanism)] {
		return nil, fail("authMechanism %s is not supported; use SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN with a user name and password", cs.AuthMechanism)
	}
	if cs.SSLCaFileSet || cs.SSLClientCertificateKeyFileSet || cs.SSLCertificateFileSet ||
		cs.SSLPrivateKeyFileSet || cs.SSLClientCertificateKeyPasswordSet {
		return nil, fail("TLS certificate file options (tlsCAFile, tlsCertificateKeyFile …) are not allowed: they would read files on this server")
	}
	for _, o := range weakTLSOptions {
		if _, ok := cs.Options[strings.ToLower(o)]; ok {
			return nil, fail("%s is not allowed: the server certificate is always verified; give a private CA in ssl_ca", o)
		}
	}
	t.tls = cs.SSL || p.SSL || (srv && !cs.SSLSet) // SRV means TLS unless tls=false
	if strings.EqualFold(cs.AuthMechanism, "PLAIN") && !t.tls {
		return nil, fail("authMechanism PLAIN sends the password in clear: add tls=true to the connection string")
	}
	if p.SSLCA != "" {
		if _, err := connectors.ParseCA(p.SSLCA); err != nil {
			return nil, err
		}
	}
	t.database = cs.Database
	if t.database == "" {
		t.database = strings.TrimSpace(p.Database)
	}
	if t.database == "" {
		return nil, fail("the connection string must name the database to query, e.g. mongodb+srv://user:…@cluster.example.net/mydb")
	}
	if err := checkDatabaseName(t.database); err != nil {
		return nil, fail("%v", err)
	}
	return t, nil
}

func checkDatabaseName(db string) error {
	if len(db) > 63 || strings.ContainsAny(db, "/\\. \"$*<>:|?\x00") {
		return errors.New("invalid database name " + `"` + db + `"`)
	}
	return nil
}

// secretsOf lists the user information of a connection string that holds a
// password, in every form a message might show it: the whole userinfo and the
// password, raw and unescaped. Both the first and the last "@" are tried, as a password may
// hold an unescaped "@".
func secretsOf(uri string) []string {
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, at := range []int{strings.Index(rest, "@"), strings.LastIndex(rest, "@")} {
		if at < 0 {
			continue
		}
		info := rest[:at]
		_, pw, ok := strings.Cut(info, ":")
		if !ok {
			continue // a user name alone is no secret
		}
		add(info)
		if u, err := url.PathUnescape(info); err == nil {
			add(u)
		}
		add(pw)
		if u, err := url.PathUnescape(pw); err == nil {
			add(u)
		}
	}
	// Longest first, so a password inside the userinfo is not half replaced.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// redact removes the connection string's user information from msg.
func (t *target) redact(msg string) string {
	for _, s := range t.secrets {
		msg = strings.ReplaceAll(msg, s, "****")
	}
	return msg
}

// Open connects, pings, and returns the pooled client.
func (Driver) Open(ctx context.Context, p connectors.Params, o connectors.Options) (connectors.Source, error) {
	t, err := parseTarget(p)
	if err != nil {
		return nil, err
	}
	s := &source{target: t, writes: p.AllowWrites, stmtTimeout: o.StatementTimeout, hopeless: make(chan struct{})}

	dial := o.Dial
	if dial == nil {
		nd := &net.Dialer{Timeout: o.ConnectTimeout}
		dial = nd.DialContext
	}
	selection := o.ConnectTimeout
	if selection <= 0 {
		selection = defaultSelectionTimeout
	}
	maxPool := o.MaxOpen
	if maxPool <= 0 {
		maxPool = 1
	}
	// ApplyURI reads the SRV and TXT records of a mongodb+srv:// string.
	opts := options.Client().ApplyURI(t.uri)
	if len(opts.Hosts) > MaxHosts {
		return nil, connectors.Errorf(connectors.KindInput,
			"the connection string's SRV record lists %d hosts; at most %d are allowed", len(opts.Hosts), MaxHosts)
	}
	// The wire guard must read plaintext; the driver runs TLS on top of the
	// dialled connection, so a TLS connection cannot be guarded here.
	opts.SetDialer(policyDialer{dial: dial, s: s, guard: opts.TLSConfig == nil && !t.tls}).
		SetMaxPoolSize(uint64(maxPool)).
		SetMinPoolSize(0).
		SetServerSelectionTimeout(selection).
		SetPoolMonitor(&event.PoolMonitor{Event: s.poolEvent})
	if o.ConnectTimeout > 0 {
		opts.SetConnectTimeout(o.ConnectTimeout)
	}
	if o.IdleTimeout > 0 {
		opts.SetMaxConnIdleTime(o.IdleTimeout)
	}
	if o.StatementTimeout > 0 {
		// The default per-operation timeout when a context has no deadline.
		opts.SetTimeout(o.StatementTimeout)
	}
	if t.tls {
		// Verified TLS with the form's CA; the driver sets ServerName to
		// each host it dials. No OCSP requests: they would go to any URL a
		// certificate names, around the host policy (a stapled response is
		// still checked), as the other connectors make none either.
		cfg, err := connectors.TLSConfig(p, "")
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(cfg).SetDisableOCSPEndpointCheck(true).
			SetServerMonitor(&event.ServerMonitor{ServerHeartbeatFailed: s.heartbeatFailed})
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, s.classify(err, true)
	}
	s.client = client
	s.db = client.Database(t.database)

	pingCtx, cancel := context.WithTimeout(ctx, selection+5*time.Second)
	defer cancel()
	// A refused address will not become allowed, nor an untrusted
	// certificate trusted: stop waiting for server selection at the first.
	go func() {
		select {
		case <-s.hopeless:
			cancel()
		case <-pingCtx.Done():
		}
	}()
	if err := client.Ping(pingCtx, nil); err != nil {
		s.Close()
		return nil, s.classify(err, true)
	}
	return s, nil
}

// policyDialer dials through the host policy and remembers a refusal. It
// dials at most MaxServers distinct addresses, and wraps plaintext
// connections in the wire guard.
type policyDialer struct {
	dial  connectors.DialContextFunc
	s     *source
	guard bool
}

// DialContext implements options.ContextDialer.
func (d policyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if !d.s.admit(addr) {
		return nil, fmt.Errorf("not dialling %s: this connection already reaches %d servers", addr, MaxServers)
	}
	c, err := d.dial(ctx, network, addr)
	if err != nil {
		var ce *connectors.Error
		if errors.As(err, &ce) && ce.Kind == connectors.KindPolicy {
			d.s.refused(ce)
		}
		return nil, err
	}
	if d.guard {
		return guardWire(c), nil
	}
	return c, nil
}

// source is one pooled MongoDB client bound to one database.
type source struct {
	target      *target
	client      *mongo.Client
	db          *mongo.Database
	writes      bool
	stmtTimeout time.Duration

	conns atomic.Int64

	// policyErr or certErr is the first refused address or untrusted
	// certificate; hopeless is closed at the first of either.
	policyErr    atomic.Pointer[connectors.Error]
	certErr      atomic.Pointer[connectors.Error]
	hopelessOnce sync.Once
	hopeless     chan struct{}

	addrMu sync.Mutex
	addrs  map[string]bool // addresses dialled, at most MaxServers
}

// admit reports whether addr may be dialled: it was dialled before, or fewer
// than MaxServers addresses have been.
func (s *source) admit(addr string) bool {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	if s.addrs[addr] {
		return true
	}
	if len(s.addrs) >= MaxServers {
		return false
	}
	if s.addrs == nil {
		s.addrs = map[string]bool{}
	}
	s.addrs[addr] = true
	return true
}

func (s *source) refused(e *connectors.Error) {
	s.policyErr.CompareAndSwap(nil, e)
	s.hopelessOnce.Do(func() { close(s.hopeless) })
}

// heartbeatFailed notices a monitoring connection whose TLS handshake failed
// on the server's certificate.
func (s *source) heartbeatFailed(e *event.ServerHeartbeatFailedEvent) {
	if ce := connectors.CertError(e.Failure, "MongoDB"); ce != nil {
		ce.Msg = s.target.redact(ce.Msg)
		s.certErr.CompareAndSwap(nil, ce)
		s.hopelessOnce.Do(func() { close(s.hopeless) })
	}
}

func (s *source) poolEvent(e *event.PoolEvent) {
	switch e.Type {
	case event.ConnectionCreated:
		s.conns.Add(1)
	case event.ConnectionClosed:
		s.conns.Add(-1)
	}
}

// OpenConns is the number of pool connections open (best effort, from pool
// events; monitoring connections are not counted).
func (s *source) OpenConns() int { return int(max(s.conns.Load(), 0)) }

// Ping checks that the server answers.
func (s *source) Ping(ctx context.Context) error {
	return s.classify(s.client.Ping(ctx, nil), true)
}

// Close disconnects every pooled connection.
func (s *source) Close() {
	if s.client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.client.Disconnect(ctx)
}
