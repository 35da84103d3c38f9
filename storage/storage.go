package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// Collection names, as the design document fixes them.
const (
	CollDatabases    = "user_databases"
	CollIntegrations = "integrations"
)

// Record statuses.
const (
	StatusConnected = "connected"
	StatusPending   = "pending"
	StatusActive    = "active"
	StatusFailed    = "failed"
	StatusRemoved   = "removed"
	// StatusError: the last connection test of a saved database failed.
	StatusError = "error"
)

var (
	// ErrNotFound: no such record for this user (or it belongs to another user).
	ErrNotFound = errors.New("storage: not found")
	// ErrUnavailable: the database could not be reached in time.
	ErrUnavailable = errors.New("storage: unavailable")
)

// Database is a user's saved database connection. Password and
// ConnectionString hold Fernet tokens, never plaintext.
type Database struct {
	ID               string `bson:"_id" json:"db_id"`
	UserID           string `bson:"user_id" json:"-"`
	DBType           string `bson:"db_type" json:"db_type"`
	Name             string `bson:"name" json:"name"`
	Host             string `bson:"host,omitempty" json:"host,omitempty"`
	Port             int    `bson:"port,omitempty" json:"port,omitempty"`
	Database         string `bson:"database,omitempty" json:"database,omitempty"`
	Username         string `bson:"username,omitempty" json:"username,omitempty"`
	Password         string `bson:"password,omitempty" json:"-"`
	ConnectionString string `bson:"connection_string,omitempty" json:"-"`
	SSL              bool   `bson:"ssl" json:"ssl"`
	SSLCA            string `bson:"ssl_ca,omitempty" json:"-"` // PEM CA certificates; not secret, not listed
	AllowWrites      bool   `bson:"allow_writes" json:"allow_writes"`
	Status           string `bson:"status" json:"status"`
	// LastCheckedAt and LastError are the time and (when it failed) the
	// short message of the last test of the saved connection; Status is then
	// StatusConnected or StatusError. An edit clears them.
	LastCheckedAt *time.Time `bson:"last_checked_at,omitempty" json:"last_checked_at,omitempty"`
	LastError     string     `bson:"last_error,omitempty" json:"last_error,omitempty"`
	CreatedAt     time.Time  `bson:"created_at" json:"created_at"`
	UpdatedAt     time.Time  `bson:"updated_at" json:"updated_at"`
}

// Integration is a user's OAuth connection through Composio. CallbackJobID
// is the OAuth-callback job that activated the record, so a redelivery of
// that job answers as its first run did. ComposioStatus, StatusReason and
// CheckedAt are what Composio said of the connected account when it was
// last checked (see AccountStatus).
type Integration struct {
	ID                   string    `bson:"_id" json:"integration_id"`
	UserID               string    `bson:"user_id" json:"-"`
	Provider             string    `bson:"provider" json:"provider"`
	Status               string    `bson:"status" json:"status"`
	ComposioEntityID     string    `bson:"composio_entity_id" json:"composio_entity_id,omitempty"`
	ComposioConnectionID string    `bson:"composio_connection_id,omitempty" json:"composio_connection_id,omitempty"`
	ConnectedEmail       string    `bson:"connected_email,omitempty" json:"connected_email,omitempty"`
	RedirectURL          string    `bson:"redirect_url,omitempty" json:"-"`
	StateNonce           string    `bson:"state_nonce,omitempty" json:"-"`
	CallbackJobID        string    `bson:"callback_job_id,omitempty" json:"-"`
	CreatedAt            time.Time `bson:"created_at" json:"created_at"`
	UpdatedAt            time.Time `bson:"updated_at" json:"updated_at"`
	ComposioStatus       string    `bson:"composio_status,omitempty" json:"-"`
	StatusReason         string    `bson:"status_reason,omitempty" json:"status_reason,omitempty"`
	CheckedAt            time.Time `bson:"checked_at,omitempty" json:"-"`
}

// Store is what the API and workers need from storage.
type Store interface {
	Ping(ctx context.Context) error

	InsertDatabase(ctx context.Context, d *Database) error
	GetDatabase(ctx context.Context, userID, id string) (*Database, error)
	ListDatabases(ctx context.Context, userID string) ([]Database, error)
	DeleteDatabase(ctx context.Context, userID, id string) error
	UpdateDatabase(ctx context.Context, d *Database) error
	RecordCheck(ctx context.Context, userID, id string, ok bool, msg string, at time.Time) error

	Integrations() IntegrationStore
}

// IntegrationStore keeps OAuth integrations.
type IntegrationStore interface {
	Put(ctx context.Context, in *Integration) error
	Get(ctx context.Context, userID, id string) (*Integration, error)
	GetByProvider(ctx context.Context, userID, provider string) (*Integration, error)
	List(ctx context.Context, userID string) ([]Integration, error)
	// DueForRefresh lists up to n connections of any user, least recently
	// checked with Composio first.
	DueForRefresh(ctx context.Context, n int) ([]Integration, error)

	// The changes below are conditional: a record that is not (or no
	// longer) in the state named answers ErrNotFound and is left alone.

	// Activate completes the pending flow holding nonce.
	Activate(ctx context.Context, userID, id, nonce string, a Activation) error
	// MarkFailed closes the pending flow holding nonce as failed.
	MarkFailed(ctx context.Context, userID, id, nonce string) error
	// Remove marks an integration that is not removed yet removed.
	Remove(ctx context.Context, userID, id string) error
	// SetStatus records Composio's word on a connection whose status is from.
	SetStatus(ctx context.Context, userID, id, from string, st AccountStatus) error
}

// Mongo is the Store on MongoDB or FerretDB.
type Mongo struct {
	client *mongo.Client
	db     *mongo.Database
	dbs    *mongo.Collection
	ints   *mongo.Collection
	tokens *Tokens
	// Timeout bounds each operation, so an unreachable server answers
	// ErrUnavailable instead of hanging.
	Timeout time.Duration
}

// Open connects to uri and makes the indexes. It fails fast when the server
// cannot be reached.
func Open(ctx context.Context, uri, dbName string) (*Mongo, error) {
	// Connections idle for a minute are closed (set before the URI, whose
	// maxIdleTimeMS wins): a burst of storage reads otherwise leaves its
	// connections open for good, two file descriptors each with the
	// embedded FerretDB.
	opts := options.Client().SetMaxConnIdleTime(time.Minute).ApplyURI(uri).
		SetServerSelectionTimeout(3 * time.Second).
		SetConnectTimeout(3 * time.Second).
		SetAppName("mcp-integration-service")
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("storage: connect: %w", err)
	}
	m := &Mongo{client: client, db: client.Database(dbName), Timeout: 5 * time.Second}
	m.dbs = m.db.Collection(CollDatabases)
	m.ints = m.db.Collection(CollIntegrations)
	m.tokens = &Tokens{m: m, coll: m.db.Collection(CollTokens), now: func() time.Time { return time.Now().UTC() }}
	if err := m.Ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	if err := m.ensureIndexes(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return m, nil
}

// Close disconnects.
func (m *Mongo) Close(ctx context.Context) error { return m.client.Disconnect(ctx) }

// index is one index the service needs.
type index struct {
	coll   *mongo.Collection
	keys   bson.D
	unique bool
}

// ensureIndexes creates the indexes that do not exist yet, and only those:
// asking the embedded FerretDB to create an index that already exists, as
// every restart on an existing data dir would, panics inside it and fails
// the request.
func (m *Mongo) ensureIndexes(ctx context.Context) error {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	userID := bson.D{{Key: "user_id", Value: 1}}
	want := []index{
		{coll: m.dbs, keys: userID},
		{coll: m.ints, keys: userID},
		{coll: m.ints, keys: bson.D{{Key: "user_id", Value: 1}, {Key: "provider", Value: 1}}},
		// The status refresher's walk (DueForRefresh).
		{coll: m.ints, keys: bson.D{{Key: "checked_at", Value: 1}, {Key: "_id", Value: 1}}},
		{coll: m.tokens.coll, keys: userID},
		{coll: m.tokens.coll, keys: bson.D{{Key: "hash", Value: 1}}, unique: true},
	}
	have := map[string]bool{} // collection "/" index name
	listed := map[string]bool{}
	for _, ix := range want {
		coll := ix.coll.Name()
		if !listed[coll] {
			specs, err := ix.coll.Indexes().ListSpecifications(ctx)
			if err != nil {
				return m.wrap("list indexes of "+coll, err)
			}
			for _, sp := range specs {
				have[coll+"/"+sp.Name] = true
			}
			listed[coll] = true
		}
		name := indexName(ix.keys)
		if have[coll+"/"+name] {
			continue
		}
		opts := options.Index().SetName(name)
		if ix.unique {
			opts.SetUnique(true)
		}
		if _, err := ix.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts}); err != nil {
			return m.wrap("create index "+name+" on "+coll, err)
		}
	}
	return nil
}

// indexName is the name MongoDB gives an index by default: user_id_1_provider_1.
func indexName(keys bson.D) string {
	parts := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		parts = append(parts, k.Key, fmt.Sprint(k.Value))
	}
	return strings.Join(parts, "_")
}

func (m *Mongo) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.Timeout)
}

// wrap classifies driver errors: timeouts and network failures become
// ErrUnavailable so the API answers 503.
func (m *Mongo) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ErrNotFound
	}
	if mongo.IsTimeout(err) || mongo.IsNetworkError(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, mongo.ErrClientDisconnected) || isServerSelection(err) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	}
	return fmt.Errorf("storage: %s: %w", op, err)
}

func isServerSelection(err error) bool {
	var sse topology.ServerSelectionError
	var psse *topology.ServerSelectionError
	var ce topology.ConnectionError
	return errors.As(err, &sse) || errors.As(err, &psse) || errors.As(err, &ce) ||
		errors.Is(err, topology.ErrTopologyClosed) || errors.Is(err, topology.ErrPoolClosed) ||
		errors.Is(err, topology.ErrServerClosed)
}

// Ping checks the server answers.
func (m *Mongo) Ping(ctx context.Context) error {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	return m.wrap("ping", m.client.Ping(ctx, nil))
}

// InsertDatabase stores a new database record.
func (m *Mongo) InsertDatabase(ctx context.Context, d *Database) error {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	_, err := m.dbs.InsertOne(ctx, d)
	return m.wrap("insert database", err)
}

// GetDatabase finds one of a user's databases.
func (m *Mongo) GetDatabase(ctx context.Context, userID, id string) (*Database, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	var d Database
	err := m.dbs.FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}}).Decode(&d)
	if err != nil {
		return nil, m.wrap("get database", err)
	}
	return &d, nil
}

// ListDatabases lists a user's databases, oldest first.
func (m *Mongo) ListDatabases(ctx context.Context, userID string) ([]Database, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	cur, err := m.dbs.Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, m.wrap("list databases", err)
	}
	out := []Database{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, m.wrap("list databases", err)
	}
	return out, nil
}

// DeleteDatabase removes one of a user's databases, credentials and all.
func (m *Mongo) DeleteDatabase(ctx context.Context, userID, id string) error {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	res, err := m.dbs.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: userID}})
	if err != nil {
		return m.wrap("delete database", err)
	}
	if res.DeletedCount == 0 {
		return ErrNotFound
	}
	return nil
}
