package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

func TestInfoFieldsTools(t *testing.T) {
	t.Parallel()
	d := driver(t)
	if i := d.Info(); i.Type != "postgres" || i.Name != "PostgreSQL" || i.Order != 1 {
		t.Fatalf("Info = %+v", i)
	}
	got, err := json.Marshal(d.Fields())
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the design document's form.
	want := `[{"name":"connection_name","label":"Connection Name","type":"text","required":true},` +
		`{"name":"host","label":"Host","type":"text","required":true},` +
		`{"name":"port","label":"Port","type":"number","default":5432},` +
		`{"name":"database","label":"Database Name","type":"text","required":true},` +
		`{"name":"username","label":"Username","type":"text","required":true},` +
		`{"name":"password","label":"Password","type":"password","required":true},` +
		`{"name":"ssl","label":"SSL Required","type":"checkbox","default":false},` +
		`{"name":"ssl_ca","label":"CA Certificate (PEM, optional; for a server certificate from a private CA)","type":"textarea"}]`
	if string(got) != want {
		t.Fatalf("Fields:\n got %s\nwant %s", got, want)
	}
	prefixes := map[string]bool{}
	for _, tool := range d.Tools() {
		prefixes[tool.Prefix] = true
		var schema map[string]any
		if err := json.Unmarshal(tool.InputSchema, &schema); err != nil || schema["type"] != "object" {
			t.Errorf("%s: InputSchema is not a JSON Schema object: %v %s", tool.Prefix, err, tool.InputSchema)
		}
		desc := fmt.Sprintf(tool.Description, "My Analytics DB", "PostgreSQL")
		if strings.Contains(desc, "%!") || !strings.Contains(desc, "'My Analytics DB' (PostgreSQL)") {
			t.Errorf("%s: description format: %s", tool.Prefix, desc)
		}
	}
	if !prefixes["DB_QUERY"] || !prefixes["DB_LIST_TABLES"] || !prefixes["DB_DESCRIBE"] || len(prefixes) != 3 {
		t.Fatalf("tools = %v", prefixes)
	}
	q, _ := connectors.FindTool(d, "DB_QUERY")
	if q.Parameters["query"] != "string (SQL query)" || !strings.HasPrefix(fmt.Sprintf(q.Description, "My Analytics DB", "PostgreSQL"), "Query 'My Analytics DB' (PostgreSQL)") {
		t.Fatalf("DB_QUERY spec = %+v", q)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := connectors.Params{Host: "db.example.com", Port: 5432, Database: "d", Username: "u"}
	if err := driver(t).Validate(ok); err != nil {
		t.Fatalf("valid params (empty password allowed): %v", err)
	}
	cases := map[string]func(*connectors.Params){
		"empty host":    func(p *connectors.Params) { p.Host = "" },
		"host space":    func(p *connectors.Params) { p.Host = "db example.com" },
		"host slash":    func(p *connectors.Params) { p.Host = "db.example.com/x" },
		"host url":      func(p *connectors.Params) { p.Host = "postgres://db" },
		"port 0":        func(p *connectors.Params) { p.Port = 0 },
		"port 65536":    func(p *connectors.Params) { p.Port = 65536 },
		"no database":   func(p *connectors.Params) { p.Database = " " },
		"no username":   func(p *connectors.Params) { p.Username = "" },
		"nul in passwd": func(p *connectors.Params) { p.Password = "a\x00b" },
	}
	for name, mutate := range cases {
		p := ok
		mutate(&p)
		err := driver(t).Validate(p)
		if kindOf(err) != connectors.KindInput || err.Error() == "" {
			t.Errorf("%s: got %v, want a KindInput error", name, err)
		}
	}
}

func TestOpenPing(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	if err := src.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := src.OpenConns(); n < 1 || n > 3 {
		t.Fatalf("OpenConns = %d after a ping, want 1..3", n)
	}
	rows := query(t, src, "SELECT current_setting('application_name') AS app, current_setting('TimeZone') AS tz")
	if rows[0]["app"] != "mcp-integration-service" || rows[0]["tz"] != "UTC" {
		t.Fatalf("session settings = %v", rows)
	}
}

// PostgreSQL here uses trust authentication on 127.0.0.1, so a wrong
// password is accepted; the refusals shown are an unknown database and an
// unknown role, which the server rejects the same way it rejects a password.
func TestOpenAuthErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-Password-123"
	cases := map[string]func(*connectors.Params){
		"unknown database": func(p *connectors.Params) { p.Database = "no_such_db_mcp" },
		"unknown role":     func(p *connectors.Params) { p.Username = "no_such_role_mcp" },
	}
	for name, mutate := range cases {
		p := params(t)
		p.Password = secret
		mutate(&p)
		_, err := driver(t).Open(context.Background(), p, opts())
		if kindOf(err) != connectors.KindAuth {
			t.Errorf("%s: got %v (kind %d), want KindAuth", name, err, kindOf(err))
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
		if !strings.Contains(err.Error(), "no_such_") {
			t.Errorf("%s: error does not carry the server's message: %v", name, err)
		}
	}
	// Nothing listens on port 1: unavailable, not an auth failure.
	p := params(t)
	p.Port = 1
	if _, err := driver(t).Open(context.Background(), p, opts()); kindOf(err) != connectors.KindUnavailable {
		t.Errorf("closed port: got %v, want KindUnavailable", err)
	}
}

func TestHostPolicy(t *testing.T) {
	t.Parallel()
	o := opts()
	o.Dial = connectors.HostPolicy{AllowPrivate: false}.Dialer(time.Second)
	for _, host := range []string{"127.0.0.1", "169.254.169.254"} {
		p := params(t)
		p.Host = host
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := driver(t).Open(ctx, p, o)
		cancel()
		if kindOf(err) != connectors.KindPolicy {
			t.Errorf("%s: got %v (kind %d), want KindPolicy", host, err, kindOf(err))
		} else if !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: message %q does not say why", host, err)
		}
	}
	// The same dialer with private hosts allowed connects.
	o.Dial = connectors.HostPolicy{AllowPrivate: true}.Dialer(time.Second)
	src := open(t, params(t), o)
	if got := query(t, src, "SELECT 1 AS one"); got[0]["one"] != float64(1) {
		t.Fatalf("got %v", got)
	}
}

// With ssl the connection is encrypted and the server's certificate
// verified, like libpq's sslmode=verify-full. The local server's certificate
// is a self-signed "snakeoil" one, which must be refused (TestSSLVerifiesCertificate
// shows a trusted one accepted).
func TestSSL(t *testing.T) {
	t.Parallel()
	p := params(t)
	p.SSL = true
	var on bool
	ad := admin(t)
	if err := ad.QueryRow(context.Background(), "SELECT current_setting('ssl') = 'on'").Scan(&on); err != nil {
		t.Fatal(err)
	}
	src, err := driver(t).Open(context.Background(), p, opts())
	if !on {
		if kindOf(err) != connectors.KindAuth || !strings.Contains(err.Error(), "SSL") {
			t.Fatalf("server without SSL: got %v, want KindAuth about SSL", err)
		}
		return
	}
	if err == nil {
		src.Close()
		t.Fatal("the local server's self-signed certificate was trusted")
	}
	if kindOf(err) != connectors.KindAuth || !strings.Contains(err.Error(), "server certificate not trusted") {
		t.Fatalf("self-signed server certificate: got %v, want KindAuth about the certificate", err)
	}
}

// A connection Options.Surplus calls surplus leaves the pool as its call
// ends (the worker holds more than its share of a fleet budget); the next
// call opens a new one only when the pool has none idle.
func TestSurplusConnectionClosedOnRelease(t *testing.T) {
	t.Parallel()
	var surplus atomic.Bool
	o := opts()
	o.Surplus = surplus.Load
	src := open(t, params(t), o)
	query(t, src, "SELECT 1 AS one")
	if n := src.OpenConns(); n != 1 {
		t.Fatalf("OpenConns = %d after one call, want 1", n)
	}
	surplus.Store(true)
	query(t, src, "SELECT 1 AS one")
	if n := src.OpenConns(); n != 0 {
		t.Fatalf("OpenConns = %d after a call on a surplus connection, want 0 at once", n)
	}
	surplus.Store(false)
	query(t, src, "SELECT 1 AS one")
	if n := src.OpenConns(); n != 1 {
		t.Fatalf("OpenConns = %d, want 1", n)
	}
}
