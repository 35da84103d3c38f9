package mysql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/connectors"
)

func TestInfoFieldsTools(t *testing.T) {
	t.Parallel()
	d := driver(t)
	if i := d.Info(); i.Type != "mysql" || i.Name != "MySQL" || i.Order != 2 {
		t.Fatalf("Info = %+v", i)
	}
	got, err := json.Marshal(d.Fields())
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"name":"connection_name","label":"Connection Name","type":"text","required":true},` +
		`{"name":"host","label":"Host","type":"text","required":true},` +
		`{"name":"port","label":"Port","type":"number","default":3306},` +
		`{"name":"database","label":"Database Name","type":"text","required":true},` +
		`{"name":"username","label":"Username","type":"text","required":true},` +
		`{"name":"password","label":"Password","type":"password","required":true},` +
		`{"name":"ssl","label":"SSL Required","type":"checkbox","default":false},` +
		`{"name":"ssl_ca","label":"CA Certificate (PEM, optional; for a server certificate from a private CA)","type":"textarea"}]`
	if string(got) != want {
		t.Fatalf("Fields:\n got %s\nwant %s", got, want)
	}
	for _, prefix := range []string{"DB_QUERY", "DB_LIST_TABLES", "DB_DESCRIBE"} {
		tool, ok := connectors.FindTool(d, prefix)
		if !ok || !json.Valid(tool.InputSchema) || len(tool.Parameters) == 0 {
			t.Errorf("%s: %+v", prefix, tool)
		}
		if desc := fmt.Sprintf(tool.Description, "Shop", "MySQL"); !strings.Contains(desc, "'Shop' (MySQL)") || strings.Contains(desc, "%!") {
			t.Errorf("%s: description %q", prefix, desc)
		}
	}
	if err := d.Validate(connectors.Params{Host: "h", Port: 3306, Database: "d", Username: "u"}); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := d.Validate(connectors.Params{Host: "h/x", Port: 3306, Database: "d", Username: "u"}); kindOf(err) != connectors.KindInput {
		t.Errorf("Validate bad host: %v", err)
	}
}

func TestOpenPing(t *testing.T) {
	t.Parallel()
	src := open(t, params(t), opts())
	if err := src.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := src.OpenConns(); n < 1 || n > 3 {
		t.Fatalf("OpenConns = %d, want 1..3", n)
	}
	rows := query(t, src, "SELECT @@session.time_zone AS tz, @@session.autocommit AS ac")
	if rows[0]["tz"] != "+00:00" {
		t.Fatalf("session = %v", rows)
	}
}

func TestOpenAuthErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-Password-123"
	p := user(t, secret, "SELECT")
	// The right password opens.
	open(t, p, opts())

	cases := map[string]func(*connectors.Params){
		"wrong password":   func(p *connectors.Params) { p.Password = "wrong-" + secret },
		"unknown user":     func(p *connectors.Params) { p.Username = "no_such_user_mcp" },
		"unknown database": func(p *connectors.Params) { p.Database = "no_such_db_mcp" },
	}
	for name, mutate := range cases {
		q := p
		mutate(&q)
		_, err := driver(t).Open(context.Background(), q, opts())
		if kindOf(err) != connectors.KindAuth {
			t.Errorf("%s: got %v (kind %d), want KindAuth", name, err, kindOf(err))
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
		if !strings.Contains(err.Error(), "Error 10") {
			t.Errorf("%s: error does not carry the server's message: %v", name, err)
		}
	}
	q := params(t)
	q.Port = 1
	if _, err := driver(t).Open(context.Background(), q, opts()); kindOf(err) != connectors.KindUnavailable {
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
		if kindOf(err) != connectors.KindPolicy || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: got %v (kind %d), want KindPolicy", host, err, kindOf(err))
		}
	}
	o.Dial = connectors.HostPolicy{AllowPrivate: true}.Dialer(time.Second)
	src := open(t, params(t), o)
	if got := query(t, src, "SELECT 1 AS one"); got[0]["one"] == nil {
		t.Fatalf("got %v", got)
	}
}

// With ssl the connection must be encrypted: a server without TLS is refused
// with a clear message, never used in plaintext.
func TestSSL(t *testing.T) {
	t.Parallel()
	p := params(t)
	p.SSL = true
	src, err := driver(t).Open(context.Background(), p, opts())
	if err != nil {
		// The local MariaDB has TLS disabled.
		if kindOf(err) != connectors.KindAuth || !strings.Contains(err.Error(), "does not accept SSL") {
			t.Fatalf("server without TLS: got %v, want KindAuth about SSL", err)
		}
		return
	}
	t.Cleanup(src.Close)
	got := query(t, src, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
	if v, _ := got[0]["Value"].(string); v == "" {
		t.Fatalf("connection not encrypted: %v", got)
	}
}
