package embedded

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestFerretStartQueryClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dir := filepath.Join(t.TempDir(), "not", "yet there")
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := StartFerret(ctx, dir, 0, logger)
	if err != nil {
		t.Fatalf("StartFerret: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = f.Close()
		}
	}()
	if !strings.HasPrefix(f.URI(), "mongodb://127.0.0.1:") || !strings.HasSuffix(f.URI(), "/") {
		t.Fatalf("URI = %q, want mongodb://127.0.0.1:<port>/", f.URI())
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("data directory not created: %v", err)
	}

	c, err := mongo.Connect(options.Client().ApplyURI(f.URI()))
	if err != nil {
		t.Fatal(err)
	}
	coll := c.Database("embedded_test").Collection("things")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "name", Value: "widget"}, {Key: "n", Value: 42}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var got struct {
		Name string `bson:"name"`
		N    int    `bson:"n"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "name", Value: "widget"}}).Decode(&got); err != nil {
		t.Fatalf("find: %v", err)
	}
	if got.Name != "widget" || got.N != 42 {
		t.Fatalf("found %+v", got)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "level=INFO") || strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("FerretDB logged below warn level:\n%s", logs.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Errorf("no SQLite files in %s (%v)", dir, err)
	}

	host := strings.TrimSuffix(strings.TrimPrefix(f.URI(), "mongodb://"), "/")
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		_ = conn.Close()
		t.Fatalf("%s still accepts connections after Close", host)
	}
}

func TestFerretFixedPortAndPersistence(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Find a free port, then ask FerretDB for exactly it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	f, err := StartFerret(ctx, dir, port, quiet)
	if err != nil {
		t.Fatalf("StartFerret: %v", err)
	}
	want := "mongodb://127.0.0.1:" + strconv.Itoa(port) + "/"
	if f.URI() != want {
		t.Errorf("URI = %q, want %q", f.URI(), want)
	}

	// A second server cannot take the same port.
	if g, err := StartFerret(ctx, t.TempDir(), port, quiet); err == nil {
		_ = g.Close()
		t.Errorf("second StartFerret on port %d succeeded", port)
	}

	c, err := mongo.Connect(options.Client().ApplyURI(f.URI()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Database("persist").Collection("c").InsertOne(ctx, bson.D{{Key: "k", Value: "v"}}); err != nil {
		t.Fatal(err)
	}
	_ = c.Disconnect(ctx)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// Data survives a restart on the same directory.
	f2, err := StartFerret(ctx, dir, 0, quiet)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer func() { _ = f2.Close() }()
	c2, err := mongo.Connect(options.Client().ApplyURI(f2.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c2.Disconnect(ctx) }()
	n, err := c2.Database("persist").Collection("c").CountDocuments(ctx, bson.D{{Key: "k", Value: "v"}})
	if err != nil || n != 1 {
		t.Fatalf("after restart: count=%d err=%v, want 1", n, err)
	}
}

func TestStartFerretBadArgs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := StartFerret(ctx, "", 0, nil); err == nil {
		t.Error("empty dir accepted")
	}
	if _, err := StartFerret(ctx, t.TempDir(), 70000, nil); err == nil {
		t.Error("port 70000 accepted")
	}
	if _, err := StartFerret(ctx, filepath.Join(t.TempDir(), "a?b"), 0, nil); err == nil {
		t.Error("directory with ? accepted")
	}
}

// With no port, FerretDB listens on a unix socket in a 0700 directory only,
// and NATS on nothing: neither can be dialled over TCP.
func TestNoTCPListeners(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, err := StartFerret(ctx, t.TempDir(), -1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Addr() != "" || !strings.HasPrefix(f.URI(), "mongodb://%2F") || !strings.HasSuffix(f.URI(), ".sock/") {
		t.Fatalf("Addr %q URI %q", f.Addr(), f.URI())
	}
	sock, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(f.URI(), "mongodb://"), "/"))
	st, err := os.Stat(filepath.Dir(sock))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory: %v %v", st.Mode(), err)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(f.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatalf("ping over the socket: %v", err)
	}
	// A data dir too long for a socket path gets a temporary directory.
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 90))
	g, err := StartFerret(ctx, long, -1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	gs, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(g.URI(), "mongodb://"), "/"))
	if len(gs) > 100 {
		t.Fatalf("socket path %d bytes", len(gs))
	}
	_ = g.Close()
	if _, err := os.Stat(filepath.Dir(gs)); !os.IsNotExist(err) {
		t.Fatalf("temporary socket directory left behind: %v", err)
	}

	n, err := StartNATS(t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.URL() != "" || n.Addr() != "" {
		t.Fatalf("NATS listens: %q %q", n.URL(), n.Addr())
	}
	nc, err := nats.Connect("", nats.InProcessServer(n.Server()))
	if err != nil {
		t.Fatalf("in-process connection: %v", err)
	}
	nc.Close()
}
