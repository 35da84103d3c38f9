package config_test

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/config"
)

// env is a Lookup over a map.
func env(m map[string]string) config.Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Nothing set: every declared default parses, and Load reads every declared
// variable (none is listed for the manifests but ignored).
func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	var asked []string
	c, err := config.Load(func(k string) (string, bool) { asked = append(asked, k); return "", false })
	if err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, v := range config.Env {
		if !slices.Contains(asked, v.Name) {
			t.Errorf("%s is declared but never read", v.Name)
		}
	}
	want := &config.Config{
		MongoDBName: "mcp_integrations", Host: "0.0.0.0", Port: 8001, DataDir: "./data",
		EmbeddedNATS: config.NoListener, EmbeddedMongo: config.NoListener, Workers: 16, JobTimeout: 30 * time.Second,
		AllowPrivate: true, MaxRows: 10000, DefaultRows: 1000, QueryTimeout: 15 * time.Second, PoolSize: 4, DBMaxConns: 8,
		AuditRetention: 720 * time.Hour, AuditMax: 100000, ComposioStatusRefresh: 10 * time.Minute,
		StreamSync: "always", JobStatusTTL: 24 * time.Hour, LogLevel: "info", StreamReplicas: 1, MetricsAddr: ":9090",
		MaxDeliver: 5, AckWait: 10 * time.Second, ComposioBaseURL: "https://backend.composio.dev",
		ComposioAPIPrefix: "/api/v3", ComposioAuthConfigs: map[string]string{}, OAuthStateTTL: 15 * time.Minute,
		ComposioToolsTTL: 10 * time.Minute, MCPMaxSessions: 16,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if !c.Embedded() || c.Addr() != "0.0.0.0:8001" {
		t.Fatalf("Embedded %v, Addr %s", c.Embedded(), c.Addr())
	}
}

// Every variable set to a value other than its default lands in its field,
// trimmed.
func TestLoadEveryVariable(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"AGENT_API_KEY": " key ", "DB_ENCRYPTION_KEY": "k1,k2", "MONGODB_URI": "mongodb://m:27017",
		"MONGODB_DB_NAME": "other", "NATS_URL": "nats://n:4222", "MCP_SERVICE_HOST": "127.0.0.1",
		"MCP_SERVICE_PORT": "0", "MCP_DATA_DIR": "/tmp/d", "MCP_EMBEDDED_NATS_PORT": "14222",
		"MCP_EMBEDDED_MONGO_PORT": "0", "MCP_WORKERS": "4096", "MCP_JOB_TIMEOUT": "1m", "MCP_NODE_ID": "node-1_a",
		"MCP_ALLOW_PRIVATE_HOSTS": "true", "MCP_ALLOWED_HOST_CIDRS": "10.20.1.2/16, fd00::/8",
		"MCP_MAX_ROWS": "50", "MCP_DEFAULT_ROWS": "50", "MCP_QUERY_TIMEOUT": "2s", "MCP_POOL_SIZE": "1000",
		"MCP_JOB_STREAM_SYNC": "100ms", "MCP_JOB_STATUS_TTL": "1h", "MCP_LOG_LEVEL": "debug",
		"MCP_STREAM_REPLICAS": "3", "MCP_METRICS_ADDR": "127.0.0.1:9091", "MCP_MAX_DELIVER": "100",
		"MCP_ACK_WAIT": "30s", "MCP_PPROF_ADDR": "127.0.0.1:6060", "COMPOSIO_API_KEY": "ck",
		"COMPOSIO_BASE_URL": "http://127.0.0.1:1", "COMPOSIO_API_PREFIX": "/api/v9",
		"COMPOSIO_AUTH_CONFIGS": "Gmail:ac_1, slack:ac_2", "OAUTH_REDIRECT_BASE": "https://mcp.example.com/",
		"OAUTH_ALLOWED_REDIRECTS": "https://a.example/, ,https://b.example", "OAUTH_STATE_KEY": "sk",
		"OAUTH_STATE_TTL": "5m", "COMPOSIO_TOOLS_CACHE_TTL": "1s", "RATE_LIMIT_PER_KEY": "1000000",
		"RATE_LIMIT_PER_USER": "7", "MCP_RATE_LIMIT_PER_TOKEN": "8", "MCP_MAX_SESSIONS_PER_TOKEN": "10000",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "MCP_DB_MAX_CONNECTIONS": "3",
		"MCP_AUDIT_RETENTION": "48h", "MCP_AUDIT_MAX_ENTRIES": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		APIKey: "key", EncryptionKeys: "k1,k2", MongoURI: "mongodb://m:27017", MongoDBName: "other",
		NATSURL: "nats://n:4222", Host: "127.0.0.1", Port: 0, DataDir: "/tmp/d", EmbeddedNATS: 14222,
		EmbeddedMongo: 0, Workers: 4096, JobTimeout: time.Minute, NodeID: "node-1_a", AllowPrivate: true,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00::/8")},
		MaxRows:      50, DefaultRows: 50, QueryTimeout: 2 * time.Second, PoolSize: 1000, StreamSync: "100ms",
		DBMaxConns: 3, AuditRetention: 48 * time.Hour, AuditMax: 0, ComposioStatusRefresh: 10 * time.Minute,
		JobStatusTTL: time.Hour, LogLevel: "debug", StreamReplicas: 3, MetricsAddr: "127.0.0.1:9091", MaxDeliver: 100,
		PprofAddr: "127.0.0.1:6060", AckWait: 30 * time.Second, ComposioAPIKey: "ck",
		ComposioBaseURL: "http://127.0.0.1:1", ComposioAPIPrefix: "/api/v9",
		ComposioAuthConfigs: map[string]string{"gmail": "ac_1", "slack": "ac_2"},
		OAuthRedirectBase:   "https://mcp.example.com", OAuthAllowed: []string{"https://a.example", "https://b.example"},
		OAuthStateKey: "sk", OAuthStateTTL: 5 * time.Minute, ComposioToolsTTL: time.Second,
		RateLimitPerKey: 1000000, RateLimitPerUser: 7, MCPRateLimit: 8, MCPMaxSessions: 10000,
		OTLPEndpoint: "http://otel:4318",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed:\n got %+v\nwant %+v", c, want)
	}
	if c.Embedded() {
		t.Fatal("external NATS and MongoDB reported as embedded")
	}
}

// MCP_ALLOW_PRIVATE_HOSTS defaults to the mode: on when anything runs
// embedded, off against external servers; set, it wins either way.
func TestAllowPrivateDefault(t *testing.T) {
	t.Parallel()
	external := map[string]string{"NATS_URL": "nats://n:4222", "MONGODB_URI": "mongodb://m"}
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, true},
		{map[string]string{"NATS_URL": "nats://n:4222"}, true},
		{external, false},
		{map[string]string{"NATS_URL": "nats://n:4222", "MONGODB_URI": "mongodb://m", "MCP_ALLOW_PRIVATE_HOSTS": "1"}, true},
		{map[string]string{"MCP_ALLOW_PRIVATE_HOSTS": "false"}, false},
	} {
		cfg, err := config.Load(env(c.env))
		if err != nil || cfg.AllowPrivate != c.want {
			t.Errorf("%v: AllowPrivate %v, %v; want %v", c.env, cfg.AllowPrivate, err, c.want)
		}
	}
}

// Every refusal names its variable; refusals add up into one error.
func TestLoadRefusals(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, value string
		want        string // in the error
	}{
		{"MCP_SERVICE_PORT", "http", "MCP_SERVICE_PORT must be an integer from 0 to 65535"},
		{"MCP_SERVICE_PORT", "65536", "MCP_SERVICE_PORT must be an integer"},
		{"MCP_SERVICE_PORT", "-1", "MCP_SERVICE_PORT must be an integer"},
		{"MCP_EMBEDDED_NATS_PORT", "99999", "MCP_EMBEDDED_NATS_PORT must be an integer"},
		{"MCP_EMBEDDED_MONGO_PORT", "x", "MCP_EMBEDDED_MONGO_PORT must be an integer"},
		{"MCP_WORKERS", "0", "MCP_WORKERS must be an integer from 1 to 4096"},
		{"MCP_WORKERS", "1.5", "MCP_WORKERS must be an integer"},
		{"MCP_MAX_ROWS", "1000001", "MCP_MAX_ROWS must be an integer"},
		{"MCP_POOL_SIZE", "0", "MCP_POOL_SIZE must be an integer"},
		{"MCP_STREAM_REPLICAS", "6", "MCP_STREAM_REPLICAS must be an integer from 1 to 5"},
		{"MCP_MAX_DELIVER", "0", "MCP_MAX_DELIVER must be an integer"},
		{"RATE_LIMIT_PER_KEY", "-1", "RATE_LIMIT_PER_KEY must be an integer"},
		{"RATE_LIMIT_PER_USER", "lots", "RATE_LIMIT_PER_USER must be an integer"},
		{"MCP_RATE_LIMIT_PER_TOKEN", "1e3", "MCP_RATE_LIMIT_PER_TOKEN must be an integer"},
		{"MCP_MAX_SESSIONS_PER_TOKEN", "0", "MCP_MAX_SESSIONS_PER_TOKEN must be an integer"},
		{"MCP_JOB_TIMEOUT", "30", "MCP_JOB_TIMEOUT must be a positive duration"},
		{"MCP_JOB_TIMEOUT", "0s", "MCP_JOB_TIMEOUT must be a positive duration"},
		{"MCP_QUERY_TIMEOUT", "-1s", "MCP_QUERY_TIMEOUT must be a positive duration"},
		{"MCP_JOB_STATUS_TTL", "a day", "MCP_JOB_STATUS_TTL must be a positive duration"},
		{"MCP_ACK_WAIT", "10", "MCP_ACK_WAIT must be a positive duration"},
		{"OAUTH_STATE_TTL", "15", "OAUTH_STATE_TTL must be a positive duration"},
		{"COMPOSIO_TOOLS_CACHE_TTL", "x", "COMPOSIO_TOOLS_CACHE_TTL must be a positive duration"},
		{"MCP_JOB_STREAM_SYNC", "sometimes", `MCP_JOB_STREAM_SYNC must be "always" or a duration`},
		{"MCP_ALLOW_PRIVATE_HOSTS", "yes", "MCP_ALLOW_PRIVATE_HOSTS must be true or false"},
		{"MCP_ALLOWED_HOST_CIDRS", "10.0.0.0/33", "MCP_ALLOWED_HOST_CIDRS entry"},
		{"MCP_ALLOWED_HOST_CIDRS", "10.0.0.1", "MCP_ALLOWED_HOST_CIDRS entry"},
		{"MCP_ALLOWED_HOST_CIDRS", "10.0.0.0/8,,", "MCP_ALLOWED_HOST_CIDRS entry"},
		{"COMPOSIO_AUTH_CONFIGS", "gmail", "COMPOSIO_AUTH_CONFIGS entry"},
		{"COMPOSIO_AUTH_CONFIGS", "gmail:", "COMPOSIO_AUTH_CONFIGS entry"},
		{"COMPOSIO_AUTH_CONFIGS", ":ac_1", "COMPOSIO_AUTH_CONFIGS entry"},
		{"COMPOSIO_AUTH_CONFIGS", "gmail:ac_1,,slack:ac_2", "COMPOSIO_AUTH_CONFIGS entry"},
		{"MCP_NODE_ID", "a.b", "MCP_NODE_ID"},
		{"MCP_NODE_ID", "a*", "MCP_NODE_ID"},
		{"MCP_NODE_ID", "a>", "MCP_NODE_ID"},
		{"MCP_NODE_ID", "a b", "MCP_NODE_ID"},
		{"MCP_NODE_ID", "a\tb", "MCP_NODE_ID"},
	} {
		_, err := config.Load(env(map[string]string{c.name: c.value}))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: %v; want an error with %q", c.name, c.value, err, c.want)
		}
	}
	_, err := config.Load(env(map[string]string{"MCP_DEFAULT_ROWS": "2000", "MCP_MAX_ROWS": "1999"}))
	if err == nil || !strings.Contains(err.Error(), "MCP_DEFAULT_ROWS (2000) exceeds MCP_MAX_ROWS (1999)") {
		t.Errorf("default rows over the maximum: %v", err)
	}
	_, err = config.Load(env(map[string]string{"MCP_WORKERS": "0", "MCP_ACK_WAIT": "x", "MCP_NODE_ID": "a.b"}))
	for _, name := range []string{"MCP_WORKERS", "MCP_ACK_WAIT", "MCP_NODE_ID"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("three refusals at once: %v lacks %s", err, name)
		}
	}
}

func TestRequireSecrets(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env     map[string]string
		missing []string
	}{
		{map[string]string{}, []string{"AGENT_API_KEY", "DB_ENCRYPTION_KEY"}},
		{map[string]string{"AGENT_API_KEY": "k"}, []string{"DB_ENCRYPTION_KEY"}},
		{map[string]string{"DB_ENCRYPTION_KEY": "k"}, []string{"AGENT_API_KEY"}},
		{map[string]string{"AGENT_API_KEY": "k", "DB_ENCRYPTION_KEY": "k"}, nil},
	} {
		cfg, err := config.Load(env(c.env))
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.RequireSecrets()
		if (err == nil) != (len(c.missing) == 0) {
			t.Fatalf("%v: %v", c.env, err)
		}
		for _, m := range c.missing {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%v: %v does not name %s", c.env, err, m)
			}
		}
	}
}

// The servers of NATS_URL and MONGODB_URI, with default ports; credentials
// are never returned, and a unix socket host is skipped.
func TestServerAddrs(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{
		"NATS_URL":    "nats://user:natspw@n1:4223, nats://n2",
		"MONGODB_URI": "mongodb://app:mongopw@m1,m2:27018,[::1]/db?replicaSet=rs",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.ServerAddrs()
	want := []string{"n1:4223", "n2:4222", "m1:27017", "m2:27018", "[::1]:27017"}
	if !slices.Equal(got, want) {
		t.Fatalf("ServerAddrs = %v, want %v", got, want)
	}
	for _, a := range got {
		if strings.Contains(a, "pw") {
			t.Fatalf("a password in %s", a)
		}
	}
	sock, _ := config.Load(env(map[string]string{"MONGODB_URI": "mongodb://%2Ftmp%2Fmongo.sock/"}))
	if a := sock.ServerAddrs(); len(a) != 0 {
		t.Fatalf("unix socket listed: %v", a)
	}
}

// Without a Lookup, Load reads the process environment.
func TestLoadFromEnvironment(t *testing.T) {
	t.Setenv("MCP_WORKERS", "3")
	cfg, err := config.Load(nil)
	if err != nil || cfg.Workers != 3 {
		t.Fatalf("Workers %d, %v", cfg.Workers, err)
	}
}
