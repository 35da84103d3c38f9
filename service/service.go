package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/api"
	"github.com/openanalyst/mcp-integration-service/budget"
	"github.com/openanalyst/mcp-integration-service/config"
	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/integrations"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/mcpserver"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/metrics"
	"github.com/openanalyst/mcp-integration-service/procs"
	"github.com/openanalyst/mcp-integration-service/queue"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
	"github.com/openanalyst/mcp-integration-service/web"
	"github.com/openanalyst/mcp-integration-service/worker"
)

// Mode selects what a process runs.
type Mode string

// Modes of the binary.
const (
	ModeServe  Mode = "serve"  // API, workers and (when unconfigured) embedded servers
	ModeAPI    Mode = "api"    // the API node only, against external NATS and MongoDB
	ModeWorker Mode = "worker" // a worker process only
)

// Options adjust a process beyond its configuration.
type Options struct {
	Out io.Writer // where start-up notes are printed; default stderr
	// ComposioSandbox replaces Composio with a local test double (serve
	// --composio-sandbox); the command starts the double.
	ComposioSandbox *integrations.Sandbox
	// ComposioHTTP calls Composio; default a new client. For tests.
	ComposioHTTP *http.Client
	// ComposioNow is the clock of OAuth state; default time.Now. For tests.
	ComposioNow func() time.Time
	Logger      *slog.Logger
}

// Instance is a running process.
type Instance struct {
	Config   *config.Config
	Mode     Mode
	Logger   *slog.Logger
	NC       *nats.Conn
	JS       jetstream.JetStream
	Store    *storage.Mongo
	Ring     *keyring.Keyring
	Statuses *queue.Statuses
	API      *api.Server
	Worker   *worker.Worker
	Pools    *worker.Pools
	// Audit writes the audit log (API nodes only).
	Audit *storage.Auditor
	// Metrics is the process's Prometheus registry.
	Metrics *metrics.Metrics
	// Load counts the HTTP requests and jobs in flight, for procs.Run.
	Load *procs.Load
	// URL is the API's base URL, once it listens.
	URL string

	natsSrv  *embedded.NATS
	apiLn    net.Listener
	policy   connectors.HostPolicy
	ferret   *embedded.Ferret
	http     *http.Server
	mhttp    *http.Server
	closers  []func()
	runErr   chan error
	stopWork context.CancelFunc
	drain    context.CancelFunc
	once     sync.Once
}

// Start brings a process up and returns once it serves. Stop it with
// Shutdown (graceful) or Close.
func Start(ctx context.Context, cfg *config.Config, mode Mode, o Options) (_ *Instance, err error) {
	if o.Out == nil {
		o.Out = os.Stderr
	}
	log := o.Logger
	if log == nil {
		log = NewLogger(os.Stderr, cfg.LogLevel)
	}
	in := &Instance{Config: cfg, Mode: mode, Logger: log, runErr: make(chan error, 2), Metrics: metrics.New(),
		Load: &procs.Load{}}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	if mode != ModeServe {
		var missing []string
		if cfg.NATSURL == "" {
			missing = append(missing, "NATS_URL")
		}
		if cfg.MongoURI == "" {
			missing = append(missing, "MONGODB_URI")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s mode needs external servers: set %s", mode, strings.Join(missing, " and "))
		}
	}
	if cfg.Embedded() && mode == ModeServe {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
		}
		if err := ensureSecrets(cfg, o.Out); err != nil {
			return nil, err
		}
	}
	if err := cfg.RequireSecrets(); err != nil {
		return nil, err
	}
	if in.Ring, err = keyring.Parse(cfg.EncryptionKeys); err != nil {
		return nil, err
	}
	if cfg.PprofAddr != "" {
		if err := in.startPprof(cfg.PprofAddr); err != nil {
			return nil, err
		}
	}
	if cfg.NodeID == "" {
		cfg.NodeID = strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	}

	natsURL := cfg.NATSURL
	if natsURL == "" {
		var every time.Duration
		sync := "fsync on every write"
		if cfg.StreamSync != "always" {
			every, _ = time.ParseDuration(cfg.StreamSync)
			sync = "fsync every " + every.String() + " (MCP_JOB_STREAM_SYNC opt-out: a machine crash can lose acknowledged jobs)"
		}
		if in.natsSrv, err = embedded.StartNATS(cfg.DataDir, cfg.EmbeddedNATS, every); err != nil {
			return nil, err
		}
		natsURL = in.natsSrv.URL()
		where := "in-process only (no listener)"
		if natsURL != "" {
			where = natsURL
		}
		fmt.Fprintf(o.Out, "embedded NATS (JetStream, %s), %s, data in %s\n", sync, where, filepath.Join(cfg.DataDir, "nats"))
	}
	mongoURI := cfg.MongoURI
	if mongoURI == "" {
		if in.ferret, err = embedded.StartFerret(ctx, filepath.Join(cfg.DataDir, "ferretdb"), cfg.EmbeddedMongo, log); err != nil {
			return nil, err
		}
		mongoURI = in.ferret.URI()
		where := "on " + in.ferret.Addr()
		if in.ferret.Addr() == "" {
			where = "on a unix socket only (" + mongoURI + ")"
		}
		fmt.Fprintf(o.Out, "embedded FerretDB (SQLite) %s, data in %s\n", where, filepath.Join(cfg.DataDir, "ferretdb"))
	}
	// A restarted NATS without the memory stream of fast jobs (a standalone
	// server, or a whole cluster, restarted) gets it back: every reconnect
	// ensures the streams and consumers again.
	reconnected := make(chan struct{}, 1)
	natsOpts := []nats.Option{}
	if in.natsSrv != nil {
		// The process's own clients talk to the embedded server in memory.
		natsOpts = append(natsOpts, nats.InProcessServer(in.natsSrv.Server()))
	}
	if in.NC, err = nats.Connect(natsURL, append(natsOpts, nats.Name("mcp-"+string(mode)+"-"+cfg.NodeID),
		nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond), nats.ReconnectBufSize(-1),
		nats.Timeout(3*time.Second), nats.PingInterval(5*time.Second), nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own clean close
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))...); err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	if in.JS, err = jetstream.New(in.NC, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return nil, err
	}
	settings := queue.DefaultSettings()
	settings.Replicas = cfg.StreamReplicas
	settings.StatusTTL = cfg.JobStatusTTL
	settings.MaxDeliver = cfg.MaxDeliver
	settings.AckWait = cfg.AckWait
	// A NATS cluster that is still electing its leaders refuses stream
	// updates for a while: retry, up to a minute, before giving up.
	if err := setupQueue(ctx, in.JS, settings, log); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if in.Statuses, err = queue.OpenStatuses(sctx, in.JS); err != nil {
		return nil, err
	}
	ensureCtx, stopEnsure := context.WithCancel(context.Background())
	in.closers = append(in.closers, stopEnsure)
	go in.ensureStreams(ensureCtx, reconnected, settings)
	in.Metrics.JetStream(in.JS)
	if in.Store, err = storage.Open(sctx, mongoURI, cfg.MongoDBName); err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}

	// The OAuth side (Composio), when configured.
	if err := integrations.CheckSandbox(cfg, mode == ModeServe, o.ComposioSandbox != nil, string(mode)); err != nil {
		return nil, err
	}
	apps, err := integrations.Build(integrations.Deps{Config: cfg, Store: in.Store, JS: in.JS, Ring: in.Ring,
		Worker: mode != ModeAPI, API: mode != ModeWorker, APIURL: func() string { return in.URL },
		Sandbox: o.ComposioSandbox, Out: o.Out, HTTPClient: o.ComposioHTTP, Now: o.ComposioNow, Logger: log})
	if err != nil {
		return nil, err
	}
	if mode == ModeServe || mode == ModeAPI {
		if in.apiLn, err = (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr()); err != nil {
			return nil, fmt.Errorf("API listen on %s: %w", cfg.Addr(), err)
		}
	}
	var extraOwn []string
	if o.ComposioSandbox != nil {
		if u, err := url.Parse(o.ComposioSandbox.URL); err == nil {
			extraOwn = append(extraOwn, u.Host)
		}
	}
	in.policy = in.hostPolicy(ctx, extraOwn...)
	if mode == ModeServe || mode == ModeWorker {
		if err := in.startWorker(settings, apps); err != nil {
			return nil, err
		}
	}
	if mode == ModeServe || mode == ModeAPI {
		if err := in.startAPI(apps); err != nil {
			return nil, err
		}
		if bound := in.apiLn.Addr().String(); bound != strings.TrimPrefix(in.URL, "http://") {
			fmt.Fprintf(o.Out, "API listening on %s (all interfaces): %s\n", bound, in.URL)
		} else {
			fmt.Fprintf(o.Out, "API listening on %s\n", in.URL)
		}
	}
	return in, nil
}

// startWorker registers the job handlers and starts consuming: database
// executes and tests, and, with the OAuth side configured, app executes and
// OAuth callbacks.
func (in *Instance) startWorker(settings queue.Settings, apps *integrations.Service) error {
	cfg := in.Config
	policy := in.policy
	opts := connectors.Options{MaxOpen: cfg.PoolSize, IdleTimeout: 5 * time.Minute,
		StatementTimeout: cfg.QueryTimeout, ConnectTimeout: 5 * time.Second, Dial: policy.Dialer(5 * time.Second)}
	in.Pools = worker.NewPools(opts, 30*time.Second, 10*time.Minute, in.Logger)
	bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leases, err := budget.Open(bctx, in.JS, cfg.DBMaxConns, cfg.StreamReplicas, "worker-"+cfg.NodeID, in.Logger)
	if err != nil {
		return err
	}
	in.closers = append(in.closers, leases.Close)
	dbs := &worker.Databases{Store: in.Store, Ring: in.Ring, Pools: in.Pools, Options: opts, Budget: leases,
		Limits: worker.Limits{DefaultRows: cfg.DefaultRows, MaxRows: cfg.MaxRows, QueryTimeout: cfg.QueryTimeout}}
	in.Worker = worker.New(in.NC, in.JS, in.Statuses, worker.Options{Concurrency: cfg.Workers,
		JobTimeout: cfg.QueryTimeout + 10*time.Second, PerDatabase: min(cfg.PoolSize, cfg.DBMaxConns), Share: leases.Share, MaxDeliver: settings.MaxDeliver, MaxAge: settings.StatusTTL / 2, Logger: in.Logger, AckWait: settings.AckWait,
		Observe: in.Metrics.ObserveJob, Load: in.Load})
	in.Metrics.GaugeFunc("mcp_budget_workers", "Live workers this worker counts in the fleet (MCP_DB_MAX_CONNECTIONS is shared among them).", func() float64 { return float64(leases.Workers()) })
	in.Metrics.GaugeFunc("mcp_budget_share", "Connections this worker may open to one database: its share of MCP_DB_MAX_CONNECTIONS.", func() float64 { return float64(leases.Share()) })
	in.Metrics.GaugeFunc("mcp_worker_inflight_jobs", "Jobs this worker process is running now.", func() float64 { return float64(in.Worker.InFlight()) })
	in.Metrics.Pools(in.Pools.Stats)
	execute := worker.Executors{Databases: worker.HandlerFunc(dbs.Execute)}
	if apps != nil {
		execute.Apps = worker.HandlerFunc(apps.HandleExecute)
		in.Worker.Register(messages.KindOAuth, worker.HandlerFunc(apps.HandleCallback))
	}
	in.Worker.Register(messages.KindExecute, execute)
	in.Worker.Register(messages.KindTest, worker.HandlerFunc(dbs.Test))
	sub, err := in.NC.Subscribe(messages.EventDatabaseChanged, func(m *nats.Msg) { in.Pools.Close(string(m.Data)) })
	if err != nil {
		return err
	}
	in.closers = append(in.closers, func() { _ = sub.Unsubscribe() })
	runCtx, stop := context.WithCancel(context.Background())
	drainCtx, drain := context.WithCancel(context.Background())
	in.stopWork, in.drain = stop, drain
	go in.Pools.RunSweeper(runCtx)
	if apps != nil {
		go apps.RunStatusRefresh(runCtx) // COMPOSIO_STATUS_REFRESH; one worker of the fleet per tick
	}
	ready := make(chan struct{})
	go func() {
		close(ready)
		err := in.Worker.Run(runCtx, drainCtx)
		in.Pools.CloseAll()
		in.runErr <- err
	}()
	<-ready
	if in.Mode == ModeWorker && cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", in.Metrics.Handler())
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listen on %s: %w", cfg.MetricsAddr, err)
		}
		in.mhttp = api.NewHTTPServer(mux, api.DefaultTimeouts())
		go func() { _ = in.mhttp.Serve(ln) }()
	}
	return nil
}

// startAPI builds the request path (audit → tools service → MCP → REST)
// and serves /api, /mcp, /ui and /metrics from one router.
func (in *Instance) startAPI(apps *integrations.Service) error {
	cfg := in.Config
	var err error
	keep := storage.Retention{MaxAge: cfg.AuditRetention, MaxEntries: int64(cfg.AuditMax)}
	if in.Audit, err = in.Store.NewAuditor(context.Background(), keep, in.Logger); err != nil {
		return err
	}
	in.closers = append(in.closers, in.Audit.Close)
	in.Metrics.GaugeFunc("mcp_audit_dropped", "Audit entries dropped because storage could not keep up.",
		func() float64 { return float64(in.Audit.Dropped()) })
	tc := tools.Config{Store: in.Store, Statuses: in.Statuses, NC: in.NC, JobTimeout: cfg.JobTimeout,
		Audit: in.Audit.Record, Logger: in.Logger}
	if apps != nil {
		tc.Apps = apps
	}
	// The dispatcher hands late replies to the tools service, which keeps
	// them for GET /api/jobs/{id}: it is built first, then given to it.
	var ts *tools.Service
	disp, err := queue.NewDispatcher(in.NC, in.JS, cfg.NodeID, in.Logger, func(r messages.Reply) { ts.KeepLate(r) })
	if err != nil {
		return err
	}
	in.closers = append(in.closers, func() { _ = disp.Close() })
	tc.Dispatcher = disp
	if ts, err = tools.New(tc); err != nil {
		return err
	}
	in.closers = append(in.closers, ts.Close)
	mcp, err := mcpserver.New(mcpserver.Deps{Tools: ts, Tokens: in.Store.Tokens(), NC: in.NC,
		RateLimit: cfg.MCPRateLimit, MaxSessions: cfg.MCPMaxSessions, Logger: in.Logger})
	if err != nil {
		return err
	}
	in.closers = append(in.closers, mcp.Close)
	deps := api.Deps{APIKey: cfg.APIKey, Store: in.Store, Ring: in.Ring, Tools: ts, Statuses: in.Statuses,
		NC: in.NC, JS: in.JS, Policy: in.policy, JobTimeout: cfg.JobTimeout, Logger: in.Logger,
		Observe: in.Metrics.ObserveRequest, Audit: in.Audit.Record, Load: in.Load,
		RateLimitPerKey: cfg.RateLimitPerKey, RateLimitPerUser: cfg.RateLimitPerUser,
		Tokens: in.Store.Tokens(), PublicBase: cfg.OAuthRedirectBase,
		MCP: mcp.Handler(), UI: web.Handler(), Metrics: in.Metrics.Handler(),
		DatabaseChanged: func(dbID string) {
			ts.ForgetDatabase(dbID)
			if in.Pools != nil { // serve: this process's worker too
				in.Pools.Close(dbID)
			}
		}}
	if apps != nil {
		deps.Integrations = apps
	}
	in.API = api.New(deps)
	ln := in.apiLn
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	in.URL = "http://" + net.JoinHostPort(host, port)
	in.http = api.NewHTTPServer(in.API, api.DefaultTimeouts())
	go func() {
		if err := in.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.runErr <- err
		}
	}()
	return nil
}

// setupQueue runs queue.Setup, retrying for up to a minute.
func setupQueue(ctx context.Context, js jetstream.JetStream, s queue.Settings, log *slog.Logger) error {
	deadline := time.Now().Add(time.Minute)
	for {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := queue.Setup(sctx, js, s)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		log.Warn("job streams not ready yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// ensureStreams runs queue.Setup again after each reconnect, retrying until
// it succeeds, so that the fast stream and its consumers come back after a
// restart that lost them (memory storage).
func (in *Instance) ensureStreams(ctx context.Context, reconnected <-chan struct{}, s queue.Settings) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
		}
		for {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := queue.Setup(sctx, in.JS, s)
			cancel()
			if err == nil && in.Worker != nil {
				in.Worker.Rebind()
			}
			if err == nil || ctx.Err() != nil {
				break
			}
			in.Logger.Warn("job streams not ensured after reconnect; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// hostPolicy is the policy for user database hosts. Besides the configured
// ranges it refuses every server of the service's own: the API listener, the
// embedded servers' listeners, the worker's metrics and pprof listeners, the
// NATS and MongoDB servers it is configured with, and extra (the Composio
// sandbox).
func (in *Instance) hostPolicy(ctx context.Context, extra ...string) connectors.HostPolicy {
	cfg := in.Config
	own := append(cfg.ServerAddrs(), extra...)
	if in.apiLn != nil {
		own = append(own, in.apiLn.Addr().String())
	}
	if in.natsSrv != nil && in.natsSrv.Addr() != "" {
		own = append(own, in.natsSrv.Addr())
	}
	if in.ferret != nil && in.ferret.Addr() != "" {
		own = append(own, in.ferret.Addr())
	}
	if in.Mode == ModeWorker && cfg.MetricsAddr != "" {
		own = append(own, cfg.MetricsAddr)
	}
	if cfg.PprofAddr != "" {
		own = append(own, cfg.PprofAddr)
	}
	return connectors.NewHostPolicy(cfg.AllowPrivate, cfg.AllowedCIDRs, connectors.OwnAddrs(ctx, own...))
}

// StorageURI is the MongoDB URI the process uses (the embedded FerretDB's
// when MONGODB_URI is unset).
func (in *Instance) StorageURI() string {
	if in.ferret != nil {
		return in.ferret.URI()
	}
	return in.Config.MongoURI
}

// ConnectNATS opens another client connection to the NATS server this
// process uses: in memory to the embedded server, else to NATS_URL.
func (in *Instance) ConnectNATS(opts ...nats.Option) (*nats.Conn, error) {
	if in.natsSrv != nil {
		return nats.Connect(in.natsSrv.URL(), append(opts, nats.InProcessServer(in.natsSrv.Server()))...)
	}
	return nats.Connect(in.Config.NATSURL, opts...)
}

// Done reports a fatal error of a running part.
func (in *Instance) Done() <-chan error { return in.runErr }

// Shutdown stops taking requests and jobs, lets in-flight work finish until
// ctx ends, then closes everything. Cancelling ctx abandons in-flight jobs:
// JetStream redelivers them to another worker.
func (in *Instance) Shutdown(ctx context.Context) error {
	var errs []error
	if in.http != nil {
		if err := in.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if in.stopWork != nil {
		in.stopWork()
		go func() { <-ctx.Done(); in.drain() }()
		select {
		case err := <-in.runErr:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	in.Close()
	return errors.Join(errs...)
}

// Close stops everything at once.
func (in *Instance) Close() {
	in.once.Do(func() {
		if in.http == nil && in.apiLn != nil {
			_ = in.apiLn.Close() // bound, never served
		}
		if in.http != nil {
			_ = in.http.Close()
		}
		if in.mhttp != nil {
			_ = in.mhttp.Close()
		}
		if in.stopWork != nil {
			in.stopWork()
			in.drain()
		}
		for i := len(in.closers) - 1; i >= 0; i-- {
			in.closers[i]()
		}
		if in.NC != nil {
			_ = in.NC.Drain()
			in.NC.Close()
		}
		if in.Store != nil {
			_ = in.Store.Close(context.Background())
		}
		if in.ferret != nil {
			_ = in.ferret.Close()
		}
		if in.natsSrv != nil {
			in.natsSrv.Close()
		}
	})
}

// NewLogger returns the JSON logger every process uses.
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// ensureSecrets generates AGENT_API_KEY and DB_ENCRYPTION_KEY in embedded mode
// when unset, keeping them in the data dir with mode 0600.
func ensureSecrets(cfg *config.Config, out io.Writer) error {
	gen := func(name, file string, make func() (string, error)) (string, error) {
		path := filepath.Join(cfg.DataDir, file)
		if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			fmt.Fprintf(out, "%s is unset: using the one kept in %s\n", name, path)
			return strings.TrimSpace(string(b)), nil
		}
		v, err := make()
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("keep %s in %s: %w", name, path, err)
		}
		fmt.Fprintf(out, "%s is unset: generated one and kept it in %s (mode 0600)\n", name, path)
		return v, nil
	}
	var err error
	if cfg.APIKey == "" {
		if cfg.APIKey, err = gen("AGENT_API_KEY", "agent_api_key", func() (string, error) {
			return "mcp_" + strings.ReplaceAll(uuid.NewString()+uuid.NewString(), "-", ""), nil
		}); err != nil {
			return err
		}
	}
	if cfg.EncryptionKeys == "" {
		if cfg.EncryptionKeys, err = gen("DB_ENCRYPTION_KEY", "db_encryption_key", keyring.Generate); err != nil {
			return err
		}
	}
	return nil
}
