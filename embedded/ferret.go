package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Ferret is an in-process FerretDB (MongoDB wire protocol) server.
type Ferret struct {
	uri    string
	addr   string // host:port of the TCP listener, or "" with a unix socket
	sock   string // the unix socket's path, or ""
	tmpDir string // a socket directory of our own, removed on Close
	lock   *dirLock
	cancel context.CancelFunc
	done   chan struct{}
	runErr error

	closeOnce sync.Once
}

// newMu serialises ferretdb.New, which writes FerretDB's package-global
// version information.
var newMu sync.Mutex

// StartFerret starts FerretDB v1 on SQLite in dir and waits until it
// accepts connections.
//
// With a negative port it listens only on a unix socket, dir/run/mongo.sock,
// in a directory of mode 0700 (or, when that path is too long for a socket,
// in a new 0700 temporary directory), so that only this user's processes can
// reach it and no user database connection, which dials TCP only, can. With
// port 0 or more it listens on 127.0.0.1:port (0 = random free port), for
// worker processes on the same machine.
//
// The directory is created when missing. FerretDB's own log lines go to
// logger (slog.Default() when nil) at warn level and above only. The server
// runs until Close; ctx bounds only the wait for the listener.
func StartFerret(ctx context.Context, dir string, port int, logger *slog.Logger) (*Ferret, error) {
	if dir == "" {
		return nil, errors.New("embedded: FerretDB needs a data directory")
	}
	if port > 65535 {
		return nil, fmt.Errorf("embedded: FerretDB port %d out of range", port)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: FerretDB data directory: %w", err)
	}
	// FerretDB builds SQLite URIs from the directory without escaping it.
	if strings.ContainsAny(abs, "?#%") {
		return nil, fmt.Errorf("embedded: FerretDB data directory %q must not contain ?, # or %%", abs)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: FerretDB data directory: %w", err)
	}
	sqliteURL := "file:" + filepath.ToSlash(abs) + "/"
	if logger == nil {
		logger = slog.Default()
	}
	quiet := slog.New(minLevel{h: logger.Handler(), min: slog.LevelError})

	f := &Ferret{done: make(chan struct{})}
	if f.lock, err = lockDir(abs, "FerretDB"); err != nil {
		return nil, err
	}
	listener := ferretdb.ListenerConfig{}
	if port < 0 {
		if f.sock, f.tmpDir, err = socketPath(abs); err != nil {
			f.lock.release()
			return nil, err
		}
		listener.Unix = f.sock
		f.uri = "mongodb://" + url.PathEscape(f.sock) + "/"
	} else {
		f.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		listener.TCP = f.addr
		if port != 0 {
			// FerretDB 1.24 leaks its storage backend when New fails to bind the
			// listener, and the leak detector's finalizer then panics the whole
			// process at the next GC. Find a taken port here instead.
			ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", f.addr)
			if err != nil {
				f.lock.release()
				return nil, fmt.Errorf("embedded: FerretDB cannot listen on %s: %w", f.addr, err)
			}
			if err := ln.Close(); err != nil {
				f.lock.release()
				return nil, fmt.Errorf("embedded: FerretDB cannot listen on %s: %w", f.addr, err)
			}
		}
	}
	newMu.Lock()
	fdb, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Logger:    quiet,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	newMu.Unlock()
	if err != nil {
		f.removeTmp()
		f.lock.release()
		return nil, fmt.Errorf("embedded: start FerretDB: %w", err)
	}

	// ctx bounds only the start: the server runs until Close.
	var runCtx context.Context
	runCtx, f.cancel = context.WithCancel(context.WithoutCancel(ctx)) //nolint:gosec // Close calls f.cancel
	go func() {
		defer close(f.done)
		f.runErr = fdb.Run(runCtx)
	}()

	network, addr := "unix", f.sock
	if f.sock == "" {
		// New has already bound the listener, so the address is known now.
		f.uri = fdb.MongoDBURI()
		if f.addr, err = hostOf(f.uri); err != nil {
			_ = f.Close()
			return nil, err
		}
		network, addr = "tcp", f.addr
	}
	if err := waitAccepting(ctx, network, addr); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// URI returns the server's connection string: mongodb://127.0.0.1:<port>/,
// or mongodb://<escaped socket path>/ on a unix socket.
func (f *Ferret) URI() string { return f.uri }

// Addr is the TCP listener's host:port, or "" on a unix socket.
func (f *Ferret) Addr() string { return f.addr }

// socketPath picks the unix socket of a server with data in dir: dir/run,
// mode 0700, when the path fits a socket address, else a new temporary 0700
// directory (tmp is then that directory, to remove on Close).
func socketPath(dir string) (sock, tmp string, err error) {
	const maxSock = 100 // sun_path is 108 bytes on Linux, 104 on BSDs
	run := filepath.Join(dir, "run")
	if len(run)+len("/mongo.sock") <= maxSock {
		if err := os.MkdirAll(run, 0o700); err != nil {
			return "", "", fmt.Errorf("embedded: FerretDB socket directory: %w", err)
		}
		// An existing directory keeps its mode through MkdirAll.
		if err := os.Chmod(run, 0o700); err != nil { //nolint:gosec // a directory: 0700 is owner-only
			return "", "", fmt.Errorf("embedded: FerretDB socket directory: %w", err)
		}
		sock = filepath.Join(run, "mongo.sock")
		_ = os.Remove(sock) // left by a killed process
		return sock, "", nil
	}
	tmp, err = os.MkdirTemp("", "mcp-ferret-") // created 0700
	if err != nil {
		return "", "", fmt.Errorf("embedded: FerretDB socket directory: %w", err)
	}
	return filepath.Join(tmp, "mongo.sock"), tmp, nil
}

func (f *Ferret) removeTmp() {
	if f.tmpDir != "" {
		_ = os.RemoveAll(f.tmpDir)
	}
}

// Close stops the server and waits until its listener, connections and
// storage are closed. Clients still connected are given a few seconds to
// disconnect. Close is safe to call more than once.
func (f *Ferret) Close() error {
	f.closeOnce.Do(f.cancel)
	<-f.done
	f.removeTmp()
	f.lock.release()
	return f.runErr
}

// hostOf extracts host:port from a mongodb://host:port/ URI.
func hostOf(uri string) (string, error) {
	const scheme = "mongodb://"
	if len(uri) <= len(scheme) || uri[:len(scheme)] != scheme {
		return "", fmt.Errorf("embedded: unexpected FerretDB URI %q", uri)
	}
	hp := uri[len(scheme):]
	for i := 0; i < len(hp); i++ {
		if hp[i] == '/' {
			hp = hp[:i]
			break
		}
	}
	return hp, nil
}

// waitAccepting dials addr until a connection succeeds.
func waitAccepting(ctx context.Context, network, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded: FerretDB at %s does not accept connections: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// minLevel is a slog.Handler that drops records below min.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < m.min {
		return nil
	}
	return m.h.Handle(ctx, r)
}

func (m minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(attrs), min: m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h: m.h.WithGroup(name), min: m.min}
}

// RunningFerretURI is the connection string of the FerretDB that a running
// `serve` keeps on its unix socket in dir (dir/run/mongo.sock), for a
// command of the same user on the same machine; false when no server
// listens there.
func RunningFerretURI(ctx context.Context, dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	sock := filepath.Join(abs, "run", "mongo.sock")
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "unix", sock)
	if err != nil {
		return "", false
	}
	_ = c.Close()
	return "mongodb://" + url.PathEscape(sock) + "/", true
}
