package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/budget"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
	"github.com/openanalyst/mcp-integration-service/worker"
)

const natsClusterConf = "nats/nats-cluster.conf"

// exampleUserID is the tenant of the example async caller in the conf.
const exampleUserID = "user_123"

func natsConfs(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("nats/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(files, natsClusterConf) {
		t.Fatalf("%s is missing (found %v)", natsClusterConf, files)
	}
	return files
}

// A variable reference outside quotes: `password: $NATS_MCP_API_PASSWORD`.
// Quoted subjects such as "$JS.API.INFO" are not references.
var confVarRef = regexp.MustCompile(`(?:^|[^"\w$])\$([A-Za-z_][A-Za-z0-9_]*)`)

// natsConfVars lists the variables a conf reads from the environment.
func natsConfVars(t testing.TB, path string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(readFile(t, path), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "#") || strings.HasPrefix(l, "//") {
			continue
		}
		for _, m := range confVarRef.FindAllStringSubmatch(line, -1) {
			seen[m[1]] = true
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// natsTestValue is the value the tests give a conf variable (and an empty
// secret of .env.example).
func natsTestValue(name string) string {
	if name == "NATS_SERVER_NAME" {
		return "nats-1"
	}
	return "pw-" + strings.ToLower(name)
}

func natsEnv(t testing.TB, path string) []string {
	t.Helper()
	var env []string
	for _, v := range natsConfVars(t, path) {
		env = append(env, v+"="+natsTestValue(v))
	}
	return env
}

// loadNATSOpts parses a conf with the nats-server version this module builds
// against. The variables are defined at the top of a copy, not in the
// process environment, so that tests can run in parallel.
func loadNATSOpts(t testing.TB, path string) (*server.Options, map[string]string) {
	t.Helper()
	vals := map[string]string{}
	var b strings.Builder
	for _, v := range natsConfVars(t, path) {
		vals[v] = natsTestValue(v)
		fmt.Fprintf(&b, "%s: %q\n", v, vals[v])
	}
	b.WriteString(readFile(t, path))
	tmp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(tmp)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	return opts, vals
}

func natsUser(opts *server.Options, name string) *server.User {
	for _, u := range opts.Users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func natsUserPassword(opts *server.Options, name string) (string, bool) {
	if u := natsUser(opts, name); u != nil {
		return u.Password, true
	}
	return "", false
}

// natsAccountAndMonitorPort: the account of the service users and the
// monitoring port, which the KEDA scaler reads.
func natsAccountAndMonitorPort(t testing.TB) (string, int) {
	t.Helper()
	opts, _ := loadNATSOpts(t, natsClusterConf)
	u := natsUser(opts, "mcp-worker")
	if u == nil || u.Account == nil {
		t.Fatalf("%s: no user mcp-worker in an account", natsClusterConf)
	}
	return u.Account.Name, opts.HTTPPort
}

var syncAlways = regexp.MustCompile(`(?m)^\s*sync_interval:\s*always\s*$`)

func TestNATSConfigs(t *testing.T) {
	t.Parallel()
	wantResults := messages.ResultSubjectPrefix + messages.UserToken(exampleUserID) + ".>"
	for _, path := range natsConfs(t) {
		text := readFile(t, path)
		if !syncAlways.MatchString(text) {
			t.Errorf("%s: no `sync_interval: always` line", path)
		}
		opts, vals := loadNATSOpts(t, path)
		if !opts.JetStream || opts.StoreDir == "" {
			t.Errorf("%s: JetStream not enabled with a store_dir", path)
		}
		if !opts.SyncAlways {
			t.Errorf("%s: the server does not fsync every write (SyncAlways false)", path)
		}
		if opts.ServerName != vals["NATS_SERVER_NAME"] {
			t.Errorf("%s: server_name %q does not come from $NATS_SERVER_NAME", path, opts.ServerName)
		}
		if path == natsClusterConf {
			if len(opts.Routes) != 3 || opts.Cluster.Name == "" || opts.Cluster.Port == 0 {
				t.Errorf("%s: want a named cluster with 3 routes, got name %q, %d routes", path, opts.Cluster.Name, len(opts.Routes))
			}
			if opts.HTTPPort <= 0 {
				t.Errorf("%s: no monitoring port (healthchecks and KEDA read it)", path)
			}
		}

		// Every password comes from a variable: none is written in the file.
		for _, u := range opts.Users {
			if !strings.HasPrefix(u.Password, "pw-") {
				t.Errorf("%s: user %s has a literal password; use a $VARIABLE", path, u.Username)
			}
		}

		for _, name := range []string{"mcp-api", "mcp-worker"} {
			u := natsUser(opts, name)
			if u == nil {
				t.Errorf("%s: no user %s", path, name)
				continue
			}
			if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
				t.Errorf("%s: user %s has unrestricted permissions", path, name)
				continue
			}
			for _, a := range append(slices.Clone(u.Permissions.Publish.Allow), u.Permissions.Subscribe.Allow...) {
				if a == ">" || a == "$JS.API.>" || a == "$JS.>" {
					t.Errorf("%s: user %s may use %q: too broad", path, name, a)
				}
			}
		}
		if a, w := natsUser(opts, "mcp-api"), natsUser(opts, "mcp-worker"); a != nil && w != nil && a.Account.Name != w.Account.Name {
			t.Errorf("%s: mcp-api and mcp-worker are in different accounts", path)
		}

		// The example async caller: its own results only, no publishing.
		var callers []*server.User
		for _, u := range opts.Users {
			if u.Permissions != nil && u.Permissions.Subscribe != nil &&
				slices.ContainsFunc(u.Permissions.Subscribe.Allow, func(s string) bool { return strings.HasPrefix(s, messages.ResultSubjectPrefix) }) {
				callers = append(callers, u)
			}
		}
		if path == natsClusterConf && len(callers) == 0 {
			t.Errorf("%s: no async-caller user", path)
		}
		for _, c := range callers {
			p := c.Permissions
			if !slices.Equal(p.Subscribe.Allow, []string{wantResults}) || len(p.Subscribe.Deny) != 0 {
				t.Errorf("%s: caller %s may subscribe to %v (deny %v), want only %q", path, c.Username, p.Subscribe.Allow, p.Subscribe.Deny, wantResults)
			}
			if p.Publish == nil || len(p.Publish.Allow) != 0 || !slices.Equal(p.Publish.Deny, []string{">"}) {
				t.Errorf("%s: caller %s may publish; want publish deny [\">\"]", path, c.Username)
			}
			if w := natsUser(opts, "mcp-worker"); w != nil && c.Account.Name != w.Account.Name {
				t.Errorf("%s: caller %s is in account %s, but results are published in %s", path, c.Username, c.Account.Name, w.Account.Name)
			}
		}
	}
}

var natsVersion = regexp.MustCompile(`v(\d+)\.(\d+)\.(\d+)`)

// TestNATSConfigsPassServerConfigTest runs `nats-server -t -c` on every conf,
// with the variables in the environment, as a node would read them.
func TestNATSConfigsPassServerConfigTest(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr == nil {
			bin, err = "/usr/sbin/nats-server", nil
		}
	}
	if err != nil {
		msg := "nats-server is not installed: the NATS confs were NOT checked by the server binary (only by the Go parser in TestNATSConfigs). Install it (apt-get install nats-server)"
		if os.Getenv("MCP_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	m := natsVersion.FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("%s --version: %v %s", bin, err, out)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	// sync_interval exists since nats-server 2.10.
	old := major < 2 || major == 2 && minor < 10

	for _, path := range natsConfs(t) {
		check := func(file string) (string, error) {
			cmd := exec.Command(bin, "-t", "-c", file)
			cmd.Env = append(os.Environ(), natsEnv(t, path)...)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if !old {
			if out, err := check(path); err != nil || !strings.Contains(out, "is valid") {
				t.Errorf("nats-server %s -t -c %s: %v\n%s", m[0], path, err, out)
			}
			continue
		}
		// An old binary knows every option but sync_interval: it must reject
		// the conf for that reason only, and accept it without that line.
		out, err := check(path)
		if err == nil || !strings.Contains(out, `unknown field "sync_interval"`) {
			t.Errorf("nats-server %s -t -c %s: want only `unknown field \"sync_interval\"`, got %v\n%s", m[0], path, err, out)
		}
		stripped := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(stripped, []byte(syncAlways.ReplaceAllString(readFile(t, path), "")), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := check(stripped); err != nil || !strings.Contains(out, "is valid") {
			t.Errorf("nats-server %s -t -c %s (without sync_interval): %v\n%s", m[0], path, err, out)
		}
		t.Logf("NOTE: %s is nats-server %s, older than 2.10: %s was checked without its sync_interval line; "+
			"TestNATSConfigs checked that line with the Go module's parser", bin, m[0], path)
	}
}

// errSink collects a connection's asynchronous errors (permission violations).
type errSink struct {
	mu   sync.Mutex
	errs []string
}

func (k *errSink) add(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.errs = append(k.errs, err.Error())
}

func (k *errSink) list() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.errs)
}

// waitViolations waits until every subject has had a permissions violation.
func (k *errSink) waitViolations(t *testing.T, who string, subjects ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var missing []string
		errs := k.list()
		for _, s := range subjects {
			if !slices.ContainsFunc(errs, func(e string) bool {
				return strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, `"`+s+`"`)
			}) {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: no permissions violation for %v; errors: %v", who, missing, errs)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNATSPermissionsLetTheServiceWork runs the conf's accounts on a
// single-node server (cluster block dropped) and drives the real queue and
// worker code as mcp-api and mcp-worker: every subject the service uses must
// be allowed, and the async caller must get its own results and nothing more.
func TestNATSPermissionsLetTheServiceWork(t *testing.T) {
	t.Parallel()
	opts, _ := loadNATSOpts(t, natsClusterConf)
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	opts.Cluster, opts.Routes, opts.RoutesStr = server.ClusterOpts{}, nil, ""
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })

	connect := func(user string) (*nats.Conn, *errSink) {
		t.Helper()
		pw, ok := natsUserPassword(opts, user)
		if !ok {
			t.Fatalf("no NATS user %s", user)
		}
		sink := &errSink{}
		nc, err := nats.Connect(srv.ClientURL(), nats.Name(user), nats.UserInfo(user, pw),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { sink.add(err) }))
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc, sink
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	settings := queue.DefaultSettings()

	// API node: startup setup, the status bucket, the reply inbox.
	apiNC, apiErrs := connect("mcp-api")
	apiJS, err := jetstream.New(apiNC)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Setup(ctx, apiJS, settings); err != nil {
		t.Fatalf("mcp-api: queue.Setup: %v", err)
	}
	apiStatuses, err := queue.OpenStatuses(ctx, apiJS)
	if err != nil {
		t.Fatalf("mcp-api: OpenStatuses: %v", err)
	}
	disp, err := queue.NewDispatcher(apiNC, apiJS, "api-1", log, nil)
	if err != nil {
		t.Fatalf("mcp-api: NewDispatcher: %v", err)
	}

	// Worker: the same setup, then consume every kind.
	wNC, wErrs := connect("mcp-worker")
	wJS, err := jetstream.New(wNC)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Setup(ctx, wJS, settings); err != nil {
		t.Fatalf("mcp-worker: queue.Setup: %v", err)
	}
	wStatuses, err := queue.OpenStatuses(ctx, wJS)
	if err != nil {
		t.Fatalf("mcp-worker: OpenStatuses: %v", err)
	}
	// The connection budget: two workers announce themselves and count
	// each other (a count that fails leaves every worker at the whole
	// budget), and a dial takes and gives back a lease.
	var leases []*budget.Budget
	for _, owner := range []string{"worker-a", "worker-b"} {
		b, err := budget.Open(ctx, wJS, 4, 1, owner, log)
		if err != nil {
			t.Fatalf("mcp-worker: budget.Open: %v", err)
		}
		t.Cleanup(b.Close)
		leases = append(leases, b)
	}
	if n, s := leases[1].Workers(), leases[1].Share(); n != 2 || s != 2 {
		t.Errorf("mcp-worker: budget counted %d workers (share %d), want 2 (share 2)", n, s)
	}
	dial := leases[0].Dialer("db_perm", func(context.Context, string, string) (net.Conn, error) {
		c, _ := net.Pipe()
		return c, nil
	})
	if c, err := dial(ctx, "tcp", "x"); err != nil {
		t.Errorf("mcp-worker: budgeted dial: %v", err)
	} else {
		_ = c.Close()
	}
	events, err := wNC.SubscribeSync(messages.EventDatabaseChanged)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(wNC, wJS, wStatuses, worker.Options{Concurrency: 2, JobTimeout: 5 * time.Second, Logger: log})
	for _, k := range messages.Kinds {
		w.Register(k, worker.HandlerFunc(func(context.Context, *messages.Job, int) worker.Outcome {
			return worker.Outcome{Body: []byte(`{"result":"ok"}`)}
		}))
	}
	runCtx, stop := context.WithCancel(context.Background())
	drainCtx, drain := context.WithCancel(context.Background())
	finished := make(chan struct{})
	var runErr error
	go func() { runErr = w.Run(runCtx, drainCtx); close(finished) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			drain()
			<-finished
		}
	})

	// The async caller listens on its own subtree.
	callerName := "caller-" + exampleUserID
	callerNC, callerErrs := connect(callerName)
	own := messages.ResultSubjectPrefix + messages.UserToken(exampleUserID) + ".>"
	results, err := callerNC.SubscribeSync(own)
	if err != nil {
		t.Fatal(err)
	}
	if err := callerNC.Flush(); err != nil {
		t.Fatal(err)
	}

	// A synchronous call of each kind and class: job out, reply back to the
	// API inbox.
	for _, k := range messages.Kinds {
		classes := []messages.Class{messages.Durable}
		if k != messages.KindOAuth {
			classes = append(classes, messages.Fast)
		}
		for _, c := range classes {
			id := "sync-" + string(k)
			if c == messages.Fast {
				id += "-fast"
			}
			j, _ := messages.NewJob(k, id, exampleUserID, map[string]string{"probe": "deploy test"})
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			r, err := disp.Request(rctx, c, j)
			rcancel()
			if err != nil || !r.OK() {
				t.Fatalf("%s %s job through mcp-api and mcp-worker: reply %+v, err %v (api errors %v, worker errors %v)",
					c, k, r.Err, err, apiErrs.list(), wErrs.list())
			}
		}
	}
	select {
	case <-finished:
		t.Fatalf("worker stopped: %v", runErr)
	default:
	}

	// An async job: the caller receives the result; the API reads the status.
	aj, _ := messages.NewJob(messages.KindExecute, "async-1", exampleUserID, messages.ExecutePayload{Action: "probe", Async: true})
	if err := disp.Enqueue(ctx, aj); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	got := map[string]bool{}
	for len(got) < 3 {
		m, err := results.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("caller: results so far %v: %v (caller errors %v)", got, err, callerErrs.list())
		}
		got[m.Subject] = true
	}
	for _, id := range []string{"sync-execute", "async-1"} {
		if !got[messages.ResultSubject(exampleUserID, id)] {
			t.Errorf("caller did not get the result of %s: %v", id, got)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := apiStatuses.Get(ctx, exampleUserID, "async-1")
		if err == nil && st.Terminal() {
			if st.Status != queue.StatusSucceeded {
				t.Errorf("async job status %q", st.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("async job status: %+v, %v", st, err)
		}
	}
	if err := apiStatuses.Put(ctx, &queue.Status{JobID: "api-put", UserID: exampleUserID, Kind: messages.KindExecute,
		Status: queue.StatusRunning, CreatedAt: time.Now()}); err != nil {
		t.Errorf("mcp-api: status Put: %v", err)
	}

	// /readyz reads consumer info; workers listen for events.
	for _, k := range messages.Kinds {
		c, err := apiJS.Consumer(ctx, messages.JobStream, k.Durable())
		if err == nil {
			_, err = c.Info(ctx)
		}
		if err != nil {
			t.Errorf("mcp-api: consumer info %s: %v", k.Durable(), err)
		}
	}
	if err := apiNC.Publish(messages.EventDatabaseChanged, []byte("db-1")); err != nil {
		t.Fatal(err)
	}
	if m, err := events.NextMsg(5 * time.Second); err != nil || string(m.Data) != "db-1" {
		t.Errorf("worker did not receive %s: %v", messages.EventDatabaseChanged, err)
	}

	// KEDA reads the consumers' backlog from the monitoring endpoint.
	resp, err := http.Get(fmt.Sprintf("http://%s/jsz?acc=MCP&consumers=true&config=true", srv.MonitorAddr()))
	if err != nil {
		t.Fatal(err)
	}
	var jsz struct {
		Accounts []struct {
			Name    string `json:"name"`
			Streams []struct {
				Name      string `json:"name"`
				Consumers []struct {
					Name string `json:"name"`
				} `json:"consumer_detail"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	err = json.NewDecoder(resp.Body).Decode(&jsz)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, a := range jsz.Accounts {
		for _, s := range a.Streams {
			for _, c := range s.Consumers {
				seen = append(seen, a.Name+"/"+s.Name+"/"+c.Name)
			}
		}
	}
	account, _ := natsAccountAndMonitorPort(t)
	if want := account + "/" + messages.JobStream + "/" + messages.KindExecute.Durable(); !slices.Contains(seen, want) {
		t.Errorf("/jsz does not show %s (KEDA's view); it shows %v", want, seen)
	}

	// Least privilege: what each user must NOT be able to do.
	otherResults := messages.ResultSubjectPrefix + messages.UserToken("user_456") + ".>"
	if _, err := callerNC.SubscribeSync(otherResults); err != nil {
		t.Fatal(err)
	}
	if _, err := callerNC.SubscribeSync(messages.ResultSubjectPrefix + ">"); err != nil {
		t.Fatal(err)
	}
	_ = callerNC.Publish(messages.KindExecute.Subject(), []byte("{}"))
	_ = callerNC.Publish("$JS.API.INFO", nil)
	_ = callerNC.Flush()
	callerErrs.waitViolations(t, callerName, otherResults, messages.ResultSubjectPrefix+">",
		messages.KindExecute.Subject(), "$JS.API.INFO")

	rogueNC, rogueErrs := connect("mcp-api")
	rogueJS, err := jetstream.New(rogueNC)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	if err := rogueJS.DeleteStream(dctx, messages.JobStream); err == nil {
		t.Error("mcp-api could delete the job stream")
	}
	dcancel()
	rogueErrs.waitViolations(t, "mcp-api", "$JS.API.STREAM.DELETE."+messages.JobStream)
	if _, err := apiJS.Stream(ctx, messages.JobStream); err != nil {
		t.Errorf("job stream gone: %v", err)
	}

	workerRogue, workerRogueErrs := connect("mcp-worker")
	_ = workerRogue.Publish(messages.KindExecute.Subject(), []byte("{}"))
	_ = workerRogue.Flush()
	workerRogueErrs.waitViolations(t, "mcp-worker", messages.KindExecute.Subject())

	// Finally: the service itself ran without a single violation.
	stop()
	select {
	case <-finished:
		if runErr != nil {
			t.Errorf("worker Run: %v", runErr)
		}
	case <-time.After(10 * time.Second):
		t.Error("worker did not drain")
	}
	if e := apiErrs.list(); len(e) != 0 {
		t.Errorf("mcp-api hit errors: %v", e)
	}
	if e := wErrs.list(); len(e) != 0 {
		t.Errorf("mcp-worker hit errors: %v", e)
	}
}
