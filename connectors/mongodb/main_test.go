package mongodb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/embedded"
)

// One in-process FerretDB serves every test of the package; each test uses
// its own database.
var (
	ferretOnce sync.Once
	ferret     *embedded.Ferret
	ferretDir  string
	ferretErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if ferret != nil {
		if err := ferret.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing FerretDB:", err)
		}
		_ = os.RemoveAll(ferretDir)
	}
	os.Exit(code)
}

// ferretURI starts the shared FerretDB on first use and returns its URI,
// mongodb://127.0.0.1:<port>/.
func ferretURI(t *testing.T) string {
	t.Helper()
	ferretOnce.Do(func() {
		ferretDir, ferretErr = os.MkdirTemp("", "mongodb-connector-test-")
		if ferretErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ferret, ferretErr = embedded.StartFerret(ctx, ferretDir, 0, slog.New(slog.DiscardHandler))
	})
	if ferretErr != nil {
		t.Fatalf("embedded FerretDB: %v", ferretErr)
	}
	return ferret.URI()
}

// env is one test's database: a direct client to arrange and verify, and the
// connection string naming the database.
type env struct {
	t      *testing.T
	uri    string // connection string with the database
	dbName string
	direct *mongo.Client
	db     *mongo.Database
}

func newEnv(t *testing.T) *env {
	t.Helper()
	base := ferretURI(t)
	e := &env{t: t, dbName: "t_" + uniq()}
	e.uri = base + e.dbName
	c, err := mongo.Connect(options.Client().ApplyURI(base))
	if err != nil {
		t.Fatal(err)
	}
	e.direct, e.db = c, c.Database(e.dbName)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.db.Drop(ctx)
		_ = c.Disconnect(ctx)
	})
	return e
}

func uniq() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func testOptions(allowPrivate bool) connectors.Options {
	return connectors.Options{
		MaxOpen:          4,
		IdleTimeout:      time.Minute,
		StatementTimeout: 10 * time.Second,
		ConnectTimeout:   3 * time.Second,
		Dial:             connectors.HostPolicy{AllowPrivate: allowPrivate}.Dialer(3 * time.Second),
	}
}

func (e *env) open(writes bool) connectors.Source {
	e.t.Helper()
	return e.openParams(connectors.Params{ConnectionString: e.uri, AllowWrites: writes}, testOptions(true))
}

func (e *env) openParams(p connectors.Params, o connectors.Options) connectors.Source {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Driver{}.Open(ctx, p, o)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(s.Close)
	return s
}
