package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env names every environment variable the service reads, with its default.
// The deploy manifests are checked against this list.
var Env = []Var{
	{"AGENT_API_KEY", "", "API key OA sends in X-API-Key; generated in embedded mode when unset"},
	{"DB_ENCRYPTION_KEY", "", "comma-separated Fernet keys; the first encrypts, any decrypts; generated in embedded mode when unset"},
	{"MONGODB_URI", "", "MongoDB connection string; unset runs embedded FerretDB on SQLite"},
	{"MONGODB_DB_NAME", "mcp_integrations", "database name"},
	{"NATS_URL", "", "NATS server URL(s); unset runs an embedded NATS server"},
	{"MCP_SERVICE_HOST", "0.0.0.0", "API listen host"},
	{"MCP_SERVICE_PORT", "8001", "API listen port"},
	{"MCP_DATA_DIR", "./data", "local state directory (embedded servers, generated keys)"},
	{"MCP_EMBEDDED_NATS_PORT", "", "loopback TCP port of serve's embedded NATS, for extra worker processes (unset: no TCP listener, in-process only; the nats subcommand uses 14222)"},
	{"MCP_EMBEDDED_MONGO_PORT", "", "loopback TCP port of serve's embedded FerretDB, for extra worker processes (unset: a unix socket in a 0700 directory only)"},
	{"MCP_WORKERS", "16", "concurrent job handlers per worker process"},
	{"MCP_JOB_TIMEOUT", "30s", "how long a synchronous REST call waits for its job"},
	{"MCP_NODE_ID", "", "name of this process on the bus; random when unset"},
	{"MCP_ALLOW_PRIVATE_HOSTS", "", "allow loopback and private database hosts (default: true in embedded mode, false otherwise)"},
	{"MCP_ALLOWED_HOST_CIDRS", "", "comma-separated CIDR ranges user databases may be in even when private hosts are not allowed, e.g. 10.20.0.0/16"},
	{"MCP_MAX_ROWS", "10000", "server maximum of rows one query may return"},
	{"MCP_DEFAULT_ROWS", "1000", "row cap when a call sets none"},
	{"MCP_QUERY_TIMEOUT", "15s", "statement timeout for database queries"},
	{"MCP_POOL_SIZE", "4", "maximum open connections per user database, per worker process"},
	{"MCP_DB_MAX_CONNECTIONS", "8", "maximum connections the whole fleet of workers opens to one user database"},
	{"MCP_JOB_STREAM_SYNC", "always", "fsync policy of the job stream: always, or a Go duration (opt-out, see README)"},
	{"MCP_JOB_STATUS_TTL", "24h", "how long job results stay fetchable"},
	{"MCP_AUDIT_RETENTION", "720h", "audit entries older than this are deleted"},
	{"MCP_AUDIT_MAX_ENTRIES", "100000", "the audit log keeps at most this many entries, the newest (0 = no count limit)"},
	{"MCP_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"MCP_STREAM_REPLICAS", "1", "replicas of the job stream and status bucket (3 in a NATS cluster)"},
	{"MCP_METRICS_ADDR", ":9090", "metrics listen address of a worker process"},
	{"MCP_MAX_DELIVER", "5", "deliveries of a job before it is given up"},
	{"MCP_ACK_WAIT", "10s", "how long a job held by a silent (e.g. killed) worker waits before redelivery; running jobs report progress"},
	{"MCP_PPROF_ADDR", "", "serve Go's pprof profiles on this address (loopback only; unset = off)"},
	{"COMPOSIO_API_KEY", "", "Composio API key; unset leaves /api/integrations unconfigured"},
	{"COMPOSIO_BASE_URL", "https://backend.composio.dev", "Composio base URL"},
	{"COMPOSIO_API_PREFIX", "/api/v3", "Composio API version prefix"},
	{"COMPOSIO_AUTH_CONFIGS", "", "provider to auth config id, e.g. gmail:ac_1,slack:ac_2"},
	{"OAUTH_REDIRECT_BASE", "", "public base URL of this service, for the OAuth callback"},
	{"OAUTH_ALLOWED_REDIRECTS", "", "comma-separated origins OA may ask to be redirected to"},
	{"OAUTH_STATE_KEY", "", "HMAC key for OAuth state; derived from DB_ENCRYPTION_KEY when unset"},
	{"OAUTH_STATE_TTL", "15m", "how long a connect link's signed state stays valid"},
	{"COMPOSIO_TOOLS_CACHE_TTL", "10m", "how long a toolkit's tool list from Composio is cached"},
	{"COMPOSIO_STATUS_REFRESH", "10m", "how often one worker checks connected accounts' status with Composio, 50 per tick (0 = off)"},
	{"RATE_LIMIT_PER_KEY", "0", "requests per minute per API key (0 = off)"},
	{"RATE_LIMIT_PER_USER", "0", "requests per minute per user_id (0 = off)"},
	{"MCP_RATE_LIMIT_PER_TOKEN", "0", "requests per minute to /mcp per MCP token (0 = off)"},
	{"MCP_MAX_SESSIONS_PER_TOKEN", "16", "concurrent MCP requests and event streams (and kept sessions) per MCP token, per API node"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP endpoint; tracing is exported only when set"},
}

// Var is one environment variable the service reads.
type Var struct {
	Name    string
	Default string
	Help    string
}

// Config holds every setting, already parsed.
type Config struct {
	APIKey         string
	EncryptionKeys string
	MongoURI       string
	MongoDBName    string
	NATSURL        string
	Host           string
	Port           int
	DataDir        string
	EmbeddedNATS   int // NoListener: in-process only
	EmbeddedMongo  int // NoListener: unix socket only
	Workers        int
	JobTimeout     time.Duration
	NodeID         string
	AllowPrivate   bool
	AllowedCIDRs   []netip.Prefix
	MaxRows        int
	DefaultRows    int
	QueryTimeout   time.Duration
	PoolSize       int
	DBMaxConns     int
	StreamSync     string
	JobStatusTTL   time.Duration
	LogLevel       string
	StreamReplicas int
	MetricsAddr    string
	MaxDeliver     int
	PprofAddr      string
	AckWait        time.Duration
	AuditRetention time.Duration
	AuditMax       int

	ComposioAPIKey      string
	ComposioBaseURL     string
	ComposioAPIPrefix   string
	ComposioAuthConfigs map[string]string
	OAuthRedirectBase   string
	OAuthAllowed        []string
	OAuthStateKey       string
	OAuthStateTTL       time.Duration
	ComposioToolsTTL    time.Duration
	RateLimitPerKey     int
	RateLimitPerUser    int
	MCPRateLimit        int
	MCPMaxSessions      int
	OTLPEndpoint        string

	// ComposioStatusRefresh is how often a worker refreshes connection
	// statuses from Composio; 0 is off.
	ComposioStatusRefresh time.Duration
}

// NoListener is an embedded server port that is not set: the server opens
// no TCP listener, so that no user connection can dial it.
const NoListener = -1

// Embedded reports whether NATS or MongoDB runs in-process.
func (c *Config) Embedded() bool { return c.NATSURL == "" || c.MongoURI == "" }

// Lookup reads a variable, falling back to its declared default.
type Lookup func(string) (string, bool)

// Load parses the environment. It does not check that keys are present:
// see RequireSecrets.
func Load(lookup Lookup) (*Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(name string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		for _, v := range Env {
			if v.Name == name {
				return v.Default
			}
		}
		panic("config: undeclared variable " + name)
	}
	var errs []error
	atoi := func(name string, min, max int) int {
		n, err := strconv.Atoi(get(name))
		if err != nil || n < min || n > max {
			errs = append(errs, fmt.Errorf("%s must be an integer from %d to %d, got %q", name, min, max, get(name)))
		}
		return n
	}
	// optPort is a port that may be left unset: NoListener then.
	optPort := func(name string) int {
		if get(name) == "" {
			return NoListener
		}
		return atoi(name, 0, 65535)
	}
	dur := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration like 30s, got %q", name, get(name)))
		}
		return d
	}
	c := &Config{
		APIKey:            get("AGENT_API_KEY"),
		EncryptionKeys:    get("DB_ENCRYPTION_KEY"),
		MongoURI:          get("MONGODB_URI"),
		MongoDBName:       get("MONGODB_DB_NAME"),
		NATSURL:           get("NATS_URL"),
		Host:              get("MCP_SERVICE_HOST"),
		Port:              atoi("MCP_SERVICE_PORT", 0, 65535),
		DataDir:           get("MCP_DATA_DIR"),
		EmbeddedNATS:      optPort("MCP_EMBEDDED_NATS_PORT"),
		EmbeddedMongo:     optPort("MCP_EMBEDDED_MONGO_PORT"),
		Workers:           atoi("MCP_WORKERS", 1, 4096),
		JobTimeout:        dur("MCP_JOB_TIMEOUT"),
		NodeID:            get("MCP_NODE_ID"),
		MaxRows:           atoi("MCP_MAX_ROWS", 1, 1_000_000),
		DefaultRows:       atoi("MCP_DEFAULT_ROWS", 1, 1_000_000),
		QueryTimeout:      dur("MCP_QUERY_TIMEOUT"),
		PoolSize:          atoi("MCP_POOL_SIZE", 1, 1000),
		DBMaxConns:        atoi("MCP_DB_MAX_CONNECTIONS", 1, 10000),
		StreamSync:        get("MCP_JOB_STREAM_SYNC"),
		JobStatusTTL:      dur("MCP_JOB_STATUS_TTL"),
		LogLevel:          get("MCP_LOG_LEVEL"),
		StreamReplicas:    atoi("MCP_STREAM_REPLICAS", 1, 5),
		MetricsAddr:       get("MCP_METRICS_ADDR"),
		MaxDeliver:        atoi("MCP_MAX_DELIVER", 1, 100),
		PprofAddr:         get("MCP_PPROF_ADDR"),
		AckWait:           dur("MCP_ACK_WAIT"),
		AuditRetention:    dur("MCP_AUDIT_RETENTION"),
		AuditMax:          atoi("MCP_AUDIT_MAX_ENTRIES", 0, 1_000_000_000),
		ComposioAPIKey:    get("COMPOSIO_API_KEY"),
		ComposioBaseURL:   get("COMPOSIO_BASE_URL"),
		ComposioAPIPrefix: get("COMPOSIO_API_PREFIX"),
		OAuthRedirectBase: strings.TrimRight(get("OAUTH_REDIRECT_BASE"), "/"),
		OAuthStateKey:     get("OAUTH_STATE_KEY"),
		OAuthStateTTL:     dur("OAUTH_STATE_TTL"),
		ComposioToolsTTL:  dur("COMPOSIO_TOOLS_CACHE_TTL"),
		RateLimitPerKey:   atoi("RATE_LIMIT_PER_KEY", 0, 1_000_000),
		RateLimitPerUser:  atoi("RATE_LIMIT_PER_USER", 0, 1_000_000),
		MCPRateLimit:      atoi("MCP_RATE_LIMIT_PER_TOKEN", 0, 1_000_000),
		MCPMaxSessions:    atoi("MCP_MAX_SESSIONS_PER_TOKEN", 1, 10_000),
		OTLPEndpoint:      get("OTEL_EXPORTER_OTLP_ENDPOINT"),
	}
	if v := get("COMPOSIO_STATUS_REFRESH"); v != "0" && v != "off" {
		c.ComposioStatusRefresh = dur("COMPOSIO_STATUS_REFRESH")
	}
	if c.DefaultRows > c.MaxRows {
		errs = append(errs, fmt.Errorf("MCP_DEFAULT_ROWS (%d) exceeds MCP_MAX_ROWS (%d)", c.DefaultRows, c.MaxRows))
	}
	if c.StreamSync != "always" {
		if _, err := time.ParseDuration(c.StreamSync); err != nil {
			errs = append(errs, fmt.Errorf("MCP_JOB_STREAM_SYNC must be \"always\" or a duration, got %q", c.StreamSync))
		}
	}
	switch v := get("MCP_ALLOW_PRIVATE_HOSTS"); v {
	case "":
		c.AllowPrivate = c.Embedded()
	default:
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MCP_ALLOW_PRIVATE_HOSTS must be true or false, got %q", v))
		}
		c.AllowPrivate = b
	}
	c.ComposioAuthConfigs = map[string]string{}
	if v := get("COMPOSIO_AUTH_CONFIGS"); v != "" {
		for _, pair := range strings.Split(v, ",") {
			k, id, ok := strings.Cut(strings.TrimSpace(pair), ":")
			if !ok || k == "" || id == "" {
				errs = append(errs, fmt.Errorf("COMPOSIO_AUTH_CONFIGS entry %q is not provider:auth_config_id", pair))
				continue
			}
			c.ComposioAuthConfigs[strings.ToLower(k)] = id
		}
	}
	if v := get("MCP_ALLOWED_HOST_CIDRS"); v != "" {
		for _, part := range strings.Split(v, ",") {
			pfx, err := netip.ParsePrefix(strings.TrimSpace(part))
			if err != nil {
				errs = append(errs, fmt.Errorf("MCP_ALLOWED_HOST_CIDRS entry %q is not a CIDR range like 10.20.0.0/16", part))
				continue
			}
			c.AllowedCIDRs = append(c.AllowedCIDRs, pfx.Masked())
		}
	}
	if v := get("OAUTH_ALLOWED_REDIRECTS"); v != "" {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
				c.OAuthAllowed = append(c.OAuthAllowed, o)
			}
		}
	}
	if c.NodeID != "" && strings.ContainsAny(c.NodeID, ".*> \t") {
		errs = append(errs, fmt.Errorf("MCP_NODE_ID %q may not contain '.', '*', '>' or spaces", c.NodeID))
	}
	return c, errors.Join(errs...)
}

// RequireSecrets reports which required secret is missing outside embedded mode.
func (c *Config) RequireSecrets() error {
	var missing []string
	if c.APIKey == "" {
		missing = append(missing, "AGENT_API_KEY")
	}
	if c.EncryptionKeys == "" {
		missing = append(missing, "DB_ENCRYPTION_KEY")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required environment variable(s): %s", strings.Join(missing, ", "))
	}
	return nil
}

// ServerAddrs returns the host:port of every server in NATS_URL and
// MONGODB_URI (default ports 4222 and 27017), so that the host policy can
// refuse them. Credentials in the URIs are skipped, never returned.
func (c *Config) ServerAddrs() []string {
	var out []string
	for _, u := range strings.Split(c.NATSURL, ",") {
		if pu, err := url.Parse(strings.TrimSpace(u)); err == nil && pu.Host != "" {
			out = append(out, withPort(pu.Host, "4222"))
		}
	}
	if rest, ok := strings.CutPrefix(c.MongoURI, "mongodb://"); ok {
		hosts, _, _ := strings.Cut(rest, "/")
		hosts, _, _ = strings.Cut(hosts, "?")
		if i := strings.LastIndex(hosts, "@"); i >= 0 {
			hosts = hosts[i+1:]
		}
		for _, h := range strings.Split(hosts, ",") {
			if h != "" && !strings.Contains(h, "%2F") && !strings.Contains(h, "%2f") {
				out = append(out, withPort(h, "27017"))
			}
		}
	}
	return out
}

func withPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// Addr is the API's listen address.
func (c *Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }
