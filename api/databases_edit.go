package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
)

// dbPatch is the body of PATCH /api/databases/{db_id}: the fields to change.
// A field left out keeps its stored value.
type dbPatch struct {
	UserID           string      `json:"user_id"`
	DBType           string      `json:"db_type"` // may repeat the stored type, never change it
	Name             *string     `json:"name"`
	ConnectionName   *string     `json:"connection_name"`
	Host             *string     `json:"host"`
	Port             port        `json:"port"`
	Database         *flexString `json:"database"`
	Username         *string     `json:"username"`
	Password         *string     `json:"password"`
	SSL              *bool       `json:"ssl"`
	SSLCA            *string     `json:"ssl_ca"`
	ConnectionString *string     `json:"connection_string"`
	AllowWrites      *bool       `json:"allow_writes"`
}

func (p *dbPatch) empty() bool {
	return p.Host == nil && !p.Port.set && p.Database == nil && p.Username == nil && p.Password == nil &&
		p.SSL == nil && p.SSLCA == nil && p.ConnectionString == nil && p.Name == nil && p.ConnectionName == nil &&
		p.AllowWrites == nil
}

// reached reports whether an edit changed how the database is reached, which
// makes the last check's result stale: a new secret, or another address,
// database, user or TLS setting (a form that sends them unchanged does not).
func reached(old, next *storage.Database, p *dbPatch) bool {
	return p.Password != nil || p.ConnectionString != nil || old.Host != next.Host || old.Port != next.Port ||
		old.Database != next.Database || old.Username != next.Username || old.SSL != next.SSL || old.SSLCA != next.SSLCA
}

// merged is the connect request the patched record stands for, with the
// stored secrets opened unless the patch replaces them, so that it passes the
// validation of a connect.
func (s *Server) merged(rec *storage.Database, p *dbPatch) (*dbRequest, error) {
	req := &dbRequest{UserID: rec.UserID, DBType: rec.DBType, Name: rec.Name, Host: rec.Host,
		Port: port{set: rec.Port != 0, n: rec.Port}, Database: flexString(rec.Database), Username: rec.Username,
		SSL: rec.SSL, SSLCA: rec.SSLCA, AllowWrites: rec.AllowWrites}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&req.Name, p.ConnectionName)
	set(&req.Name, p.Name)
	set(&req.Host, p.Host)
	set(&req.Username, p.Username)
	set(&req.SSLCA, p.SSLCA)
	if p.Port.set {
		req.Port = p.Port
	}
	if p.Database != nil {
		req.Database = *p.Database
	}
	if p.SSL != nil {
		req.SSL = *p.SSL
	}
	if p.AllowWrites != nil {
		req.AllowWrites = *p.AllowWrites
	}
	var err error
	if req.Password, err = s.secret(rec, storage.FieldPassword, rec.Password, p.Password); err != nil {
		return nil, err
	}
	cs, err := s.secret(rec, storage.FieldConnectionString, rec.ConnectionString, p.ConnectionString)
	if err != nil {
		return nil, err
	}
	set(&req.ConnectionString, cs)
	return req, nil
}

// secret is a credential for the merged request: the patch's, else the
// stored token opened (an empty one stays empty).
func (s *Server) secret(rec *storage.Database, field, token string, sent *string) (*string, error) {
	if sent != nil {
		return sent, nil
	}
	plain := ""
	if token != "" {
		b, err := s.d.Ring.OpenBound(storage.CredentialBinding(rec, field), token)
		if err != nil {
			return nil, &apiError{status: http.StatusConflict, code: "credentials_unreadable",
				msg: "the stored " + field + " cannot be decrypted with the configured key; send it again"}
		}
		plain = string(b)
	}
	return &plain, nil
}

// seal seals a credential bound to its record and field; empty stays empty.
func (s *Server) seal(rec *storage.Database, field, plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	return s.d.Ring.SealBound(storage.CredentialBinding(rec, field), []byte(plain))
}

func (s *Server) databaseUpdate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var patch dbPatch
	dbID, err := decodeWithID(r, &patch, &patch.UserID, "db_id")
	if err != nil {
		writeError(w, err)
		return
	}
	if patch.empty() {
		writeError(w, errBadRequest("missing_field", "nothing to change: send at least one field of the connection"))
		return
	}
	rec, err := s.d.Store.GetDatabase(r.Context(), patch.UserID, dbID)
	if err != nil {
		s.audit(r.Context(), "database.update", patch.UserID, dbID, failStatus(err), start, "")
		writeError(w, databaseError(err, dbID))
		return
	}
	if patch.DBType != "" && patch.DBType != rec.DBType {
		writeError(w, errBadRequest("invalid_field", "db_type cannot be changed; connect a new database instead"))
		return
	}
	req, err := s.merged(rec, &patch)
	if err != nil {
		writeError(w, err)
		return
	}
	_, p, err := s.params(r.Context(), req, true)
	if err != nil {
		writeError(w, err)
		return
	}
	next := *rec
	next.Name, next.Host, next.Port, next.Database, next.Username = req.Name, displayHost(p), p.Port, p.Database, p.Username
	next.SSL, next.SSLCA, next.AllowWrites = p.SSL, p.SSLCA, p.AllowWrites
	if patch.Password != nil {
		if next.Password, err = s.seal(&next, storage.FieldPassword, p.Password); err != nil {
			writeError(w, err)
			return
		}
	}
	if patch.ConnectionString != nil {
		if next.ConnectionString, err = s.seal(&next, storage.FieldConnectionString, p.ConnectionString); err != nil {
			writeError(w, err)
			return
		}
	}
	if reached(rec, &next, &patch) { // the last check tested other settings
		next.Status, next.LastCheckedAt, next.LastError = storage.StatusConnected, nil, ""
	}
	// updated_at versions the workers' pools: it must move forward.
	next.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if !next.UpdatedAt.After(rec.UpdatedAt) {
		next.UpdatedAt = rec.UpdatedAt.Add(time.Millisecond)
	}
	if err := s.d.Store.UpdateDatabase(r.Context(), &next); err != nil {
		s.audit(r.Context(), "database.update", patch.UserID, dbID, failStatus(err), start, "")
		writeError(w, databaseError(err, dbID))
		return
	}
	s.audit(r.Context(), "database.update", patch.UserID, dbID, http.StatusOK, start, "")
	s.databaseChanged(dbID)
	s.toolsChanged(patch.UserID) // the tools' descriptions carry the name
	writeJSON(w, http.StatusOK, s.view(next))
}

func (s *Server) databaseGet(w http.ResponseWriter, r *http.Request) {
	userID, dbID := r.URL.Query().Get("user_id"), chi.URLParam(r, "db_id")
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	if err := checkID("db_id", dbID); err != nil {
		writeError(w, err)
		return
	}
	rec, err := s.d.Store.GetDatabase(r.Context(), userID, dbID)
	if err != nil {
		writeError(w, databaseError(err, dbID))
		return
	}
	writeJSON(w, http.StatusOK, s.view(*rec))
}

// databaseRetest tests a saved database with its stored credentials, on a
// worker, and records the outcome on the record.
func (s *Server) databaseRetest(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID string `json:"user_id"`
	}
	dbID, err := decodeWithID(r, &req, &req.UserID, "db_id")
	if err != nil {
		writeError(w, err)
		return
	}
	job, err := messages.NewJob(messages.KindTest, uuid.NewString(), req.UserID, messages.TestPayload{DBID: dbID})
	if err != nil {
		writeError(w, err)
		return
	}
	started := time.Now()
	stamp(r, job)
	body, err := s.submit(r.Context(), messages.Fast, job)
	if ok, msg, checked := checkOutcome(err); checked {
		// Recorded before answering, so that the next read shows it. A record
		// edited meanwhile keeps its state: the test saw the old settings.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		if rerr := s.d.Store.RecordCheck(ctx, req.UserID, dbID, ok, msg, started); rerr != nil && !errors.Is(rerr, storage.ErrNotFound) {
			s.log.Warn("database check not recorded", "db_id", dbID, "err", rerr)
		}
		cancel()
	}
	writeReply(w, body, err)
}

// maxLastError bounds the error message kept on a record.
const maxLastError = 300

// checkOutcome says what a test's answer tells about the connection: ok, or
// the database's error; checked is false when it tells nothing (no such
// record, a timeout, our own outage).
func checkOutcome(err error) (ok bool, msg string, checked bool) {
	if err == nil {
		return true, "", true
	}
	var te *tools.Error
	if !errors.As(err, &te) {
		return false, "", false
	}
	switch {
	case statusOf(te.Code) == http.StatusUnprocessableEntity, te.Code == "host_not_allowed", te.Code == "invalid_params":
	default:
		return false, "", false
	}
	msg = te.Message
	if len(msg) > maxLastError {
		msg = strings.ToValidUTF8(msg[:maxLastError], "") + "…"
	}
	return false, msg, true
}

// view is a record as the API shows it: never a secret (the JSON tags leave
// them out), and a MongoDB record saved before hosts were recorded shows
// the hosts of its connection string.
func (s *Server) view(rec storage.Database) storage.Database {
	if rec.Host == "" && rec.ConnectionString != "" {
		if b, err := s.d.Ring.OpenBound(storage.CredentialBinding(&rec, storage.FieldConnectionString), rec.ConnectionString); err == nil {
			rec.Host = connStringHosts(string(b))
		}
	}
	return rec
}

// displayHost is the host a record shows: the form's, or the hosts of a
// connection string.
func displayHost(p connectors.Params) string {
	if p.Host == "" && p.ConnectionString != "" {
		return connStringHosts(p.ConnectionString)
	}
	return p.Host
}

// connStringHosts lists the hosts of a MongoDB connection string,
// "db1.example.com:27017,db2.example.com:27017", or its SRV name: never its
// credentials or options.
func connStringHosts(uri string) string {
	if rest, ok := strings.CutPrefix(uri, "mongodb+srv://"); ok {
		uri = "mongodb://" + rest // parsed without the DNS lookup
	}
	cs, err := connstring.Parse(uri)
	if err != nil {
		return ""
	}
	return strings.Join(cs.Hosts, ",")
}

func hasField(drv connectors.Driver, name string) bool {
	for _, f := range drv.Fields() {
		if f.Name == name {
			return true
		}
	}
	return false
}

// databaseError is the answer to a failed read or write of a database
// record: another user's answers exactly like a missing one.
func databaseError(err error, dbID string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound("database_not_found", "database %s not found", Clip(dbID))
	}
	return storageError(err)
}

// failStatus is the status databaseError answers, for the audit log.
func failStatus(err error) int {
	if errors.Is(err, storage.ErrNotFound) {
		return http.StatusNotFound
	}
	return http.StatusServiceUnavailable
}
