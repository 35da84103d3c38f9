package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/storage"
	"github.com/openanalyst/mcp-integration-service/tools"
)

// port accepts a JSON number or a numeric string, as HTML forms send both.
type port struct {
	set bool
	n   int
}

func (p *port) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return errBadRequest("invalid_field", "port must be an integer from 1 to 65535")
	}
	p.set, p.n = true, n
	return nil
}

// flexString accepts a JSON string or number (Redis's database index is a
// number field of its form, a name for the other engines).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errBadRequest("invalid_field", "database must be a string or a number")
	}
	*f = flexString(n.String())
	return nil
}

// maxFieldBytes bounds the free-text connection fields.
var maxFieldBytes = map[string]int{"database": 255, "username": 255, "password": 1024, "connection_string": 4096}

// dbRequest is the body of test and connect.
type dbRequest struct {
	UserID           string     `json:"user_id"`
	DBType           string     `json:"db_type"`
	Name             string     `json:"name"`
	ConnectionName   string     `json:"connection_name"`
	Host             string     `json:"host"`
	Port             port       `json:"port"`
	Database         flexString `json:"database"`
	Username         string     `json:"username"`
	Password         *string    `json:"password"`
	SSL              bool       `json:"ssl"`
	SSLCA            string     `json:"ssl_ca"`
	ConnectionString string     `json:"connection_string"`
	AllowWrites      bool       `json:"allow_writes"`
}

// params validates a request against its type's schema and returns the
// driver and connection parameters.
func (s *Server) params(ctx context.Context, req *dbRequest, forConnect bool) (connectors.Driver, connectors.Params, error) {
	var p connectors.Params
	if req.DBType == "" {
		return nil, p, errBadRequest("missing_field", "db_type is required")
	}
	if err := checkSlug("db_type", req.DBType); err != nil {
		return nil, p, err
	}
	drv, ok := connectors.Lookup(req.DBType)
	if !ok {
		return nil, p, errBadRequest("unknown_db_type", "unknown db_type %s; see GET /api/databases/types", Clip(req.DBType))
	}
	if req.Name == "" {
		req.Name = req.ConnectionName
	}
	req.Name = strings.TrimSpace(req.Name)
	values := map[string]bool{
		"connection_name": req.Name != "", "host": req.Host != "", "database": req.Database != "",
		"username": req.Username != "", "password": req.Password != nil, "connection_string": req.ConnectionString != "",
		"port": req.Port.set, "ssl": true,
	}
	for _, f := range drv.Fields() {
		if !f.Required || values[f.Name] || (f.Name == "connection_name" && !forConnect) {
			continue
		}
		return nil, p, errBadRequest("missing_field", "%s (%s) is required for %s", f.Name, f.Label, drv.Info().Name)
	}
	if len(req.Name) > 200 {
		return nil, p, errBadRequest("invalid_field", "name is longer than 200 characters")
	}
	p = connectors.Params{Host: strings.TrimSpace(req.Host), Port: req.Port.n, Database: string(req.Database),
		Username: req.Username, SSL: req.SSL, SSLCA: strings.TrimSpace(req.SSLCA),
		ConnectionString: strings.TrimSpace(req.ConnectionString), AllowWrites: req.AllowWrites}
	if req.Password != nil {
		p.Password = *req.Password
	}
	if !hasField(drv, "host") {
		p.Host = "" // e.g. MongoDB: the hosts are in the connection string
	}
	if !req.Port.set {
		for _, f := range drv.Fields() {
			if f.Name == "port" {
				if d, ok := f.Default.(int); ok {
					p.Port = d
				}
			}
		}
	}
	if req.Port.set && (p.Port < 1 || p.Port > 65535) {
		return nil, p, errBadRequest("invalid_field", "port must be an integer from 1 to 65535, got %d", p.Port)
	}
	if p.SSLCA != "" {
		if _, err := connectors.ParseCA(p.SSLCA); err != nil {
			return nil, p, errBadRequest("invalid_field", "%s", err.Error())
		}
	}
	for field, v := range map[string]string{"database": p.Database, "username": p.Username, "password": p.Password,
		"connection_string": p.ConnectionString} {
		if len(v) > maxFieldBytes[field] {
			return nil, p, errBadRequest("invalid_field", "%s is longer than %d bytes", field, maxFieldBytes[field])
		}
	}
	if err := checkHost(p.Host); err != nil {
		return nil, p, err
	}
	if err := drv.Validate(p); err != nil {
		return nil, p, errBadRequest("invalid_field", "%s", Clip(err.Error()))
	}
	// Every host the connection will dial: the form's, or each host of a
	// MongoDB connection string (the dial checks again, after DNS).
	targets := map[string]int{}
	if p.Host != "" {
		targets[p.Host] = p.Port
	}
	if hosts := connStringHosts(p.ConnectionString); hosts != "" {
		for _, hp := range strings.Split(hosts, ",") {
			host, port := hp, 27017
			if h, ps, err := net.SplitHostPort(hp); err == nil {
				host = h
				port, _ = strconv.Atoi(ps)
			}
			targets[host] = port
		}
	}
	for host, port := range targets {
		if err := s.d.Policy.CheckHost(ctx, host, port); err != nil {
			var ce *connectors.Error
			if errors.As(err, &ce) && ce.Kind == connectors.KindPolicy {
				return nil, p, errBadRequest("host_not_allowed", "%s", ce.Msg)
			}
			// An unresolvable name is left to the connection attempt.
		}
	}
	return drv, p, nil
}

func (s *Server) databaseTypes(w http.ResponseWriter, _ *http.Request) {
	types := []connectors.Info{}
	for _, d := range connectors.Drivers() {
		types = append(types, d.Info())
	}
	writeJSON(w, http.StatusOK, map[string]any{"types": types})
}

func (s *Server) databaseSchema(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get("db_type")
	if t == "" {
		writeError(w, errBadRequest("missing_field", "db_type query parameter is required"))
		return
	}
	if err := checkSlug("db_type", t); err != nil {
		writeError(w, err)
		return
	}
	drv, ok := connectors.Lookup(t)
	if !ok {
		writeError(w, errBadRequest("unknown_db_type", "unknown db_type %s; see GET /api/databases/types", Clip(t)))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"db_type": t, "name": drv.Info().Name, "fields": drv.Fields()})
}

func (s *Server) databaseTest(w http.ResponseWriter, r *http.Request) {
	var req dbRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := checkOptional(func(_, u string) error { return requireUser(u) }, "user_id", req.UserID); err != nil {
		writeError(w, err)
		return
	}
	_, p, err := s.params(r.Context(), &req, false)
	if err != nil {
		writeError(w, err)
		return
	}
	plain, err := json.Marshal(p) //nolint:gosec // G117: sealed with Fernet below; never sent in plaintext
	if err != nil {
		writeError(w, err)
		return
	}
	sealed, err := s.d.Ring.Seal(plain)
	if err != nil {
		writeError(w, err)
		return
	}
	job, err := messages.NewJob(messages.KindTest, uuid.NewString(), req.UserID,
		messages.TestPayload{DBType: req.DBType, Sealed: sealed})
	if err != nil {
		writeError(w, err)
		return
	}
	// A connection test is a read with a caller waiting: the fast class.
	stamp(r, job)
	body, err := s.submit(r.Context(), messages.Fast, job)
	var te *tools.Error
	if req.UserID == "" && errors.As(err, &te) && te.Code == tools.CodeTimeout {
		// Its status is kept under its user: without one there is nothing
		// to poll (GET /api/jobs/{id} needs the user_id).
		err = &tools.Error{Code: te.Code, Message: "no worker answered in time; test again, " +
			"or send user_id with the test to poll a slow test's result with GET /api/jobs/{job_id}"}
	}
	writeReply(w, body, err)
}

// stamp gives a job its request's id and trace context.
func stamp(r *http.Request, job *messages.Job) {
	job.RequestID, job.Trace = middleware.GetReqID(r.Context()), r.Header.Get("traceparent")
}

// submit runs a synchronous job through the tools service and returns the
// worker's success body, as encoded once by the worker, or its error (a
// *tools.Error, with the job id of a timeout).
func (s *Server) submit(ctx context.Context, c messages.Class, job *messages.Job) ([]byte, error) {
	rep, err := s.d.Tools.Submit(ctx, c, job)
	switch {
	case err != nil:
		return nil, err
	case !rep.OK():
		return nil, &tools.Error{Code: rep.Err.Code, Message: rep.Err.Message, JobID: rep.JobID}
	}
	return rep.Body, nil
}

// writeReply writes what submit returned.
func writeReply(w http.ResponseWriter, body []byte, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeRaw(w, http.StatusOK, body)
}

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func (s *Server) databaseConnect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req dbRequest
	if err := decodeUser(r, &req, &req.UserID); err != nil {
		writeError(w, err)
		return
	}
	_, p, err := s.params(r.Context(), &req, true)
	if err != nil {
		writeError(w, err)
		return
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	rec := &storage.Database{ID: newID("db_"), UserID: req.UserID, DBType: req.DBType, Name: req.Name,
		Host: displayHost(p), Port: p.Port, Database: p.Database, Username: p.Username, SSL: p.SSL,
		SSLCA: p.SSLCA, AllowWrites: p.AllowWrites, Status: storage.StatusConnected, CreatedAt: now, UpdatedAt: now}
	if rec.Password, err = s.seal(rec, storage.FieldPassword, p.Password); err != nil {
		writeError(w, err)
		return
	}
	if rec.ConnectionString, err = s.seal(rec, storage.FieldConnectionString, p.ConnectionString); err != nil {
		writeError(w, err)
		return
	}
	if err := s.d.Store.InsertDatabase(r.Context(), rec); err != nil {
		writeError(w, storageError(err))
		s.audit(r.Context(), "database.connect", req.UserID, req.DBType, http.StatusServiceUnavailable, start, "")
		return
	}
	s.audit(r.Context(), "database.connect", req.UserID, rec.ID, http.StatusOK, start, "")
	s.toolsChanged(req.UserID)
	writeJSON(w, http.StatusOK, map[string]string{"db_id": rec.ID, "name": rec.Name, "status": rec.Status})
}

func (s *Server) databaseList(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	list, err := s.d.Store.ListDatabases(r.Context(), userID)
	if err != nil {
		writeError(w, storageError(err))
		return
	}
	for i := range list {
		list[i] = s.view(list[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"databases": list})
}

func (s *Server) databaseDisconnect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req struct {
		UserID string `json:"user_id"`
		DBID   string `json:"db_id"`
	}
	if err := decodeUser(r, &req, &req.UserID); err != nil {
		writeError(w, err)
		return
	}
	if req.DBID == "" {
		writeError(w, errBadRequest("missing_field", "db_id is required"))
		return
	}
	if err := checkID("db_id", req.DBID); err != nil {
		writeError(w, err)
		return
	}
	err := s.d.Store.DeleteDatabase(r.Context(), req.UserID, req.DBID)
	status := http.StatusOK
	if err != nil {
		status = http.StatusNotFound
		if errors.Is(err, storage.ErrUnavailable) {
			status = http.StatusServiceUnavailable
		}
	}
	s.audit(r.Context(), "database.disconnect", req.UserID, req.DBID, status, start, "")
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, errNotFound("database_not_found", "database %s not found", Clip(req.DBID)))
		return
	}
	if err != nil {
		writeError(w, storageError(err))
		return
	}
	s.databaseChanged(req.DBID)
	s.toolsChanged(req.UserID)
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "db_id": req.DBID, "status": "disconnected"})
}

// databaseChanged tells every process that a database was edited or
// removed: this one at once, the others by message. A call that arrives
// after the answer never runs on the old record here, even if the message
// is still on its way to this process's worker.
func (s *Server) databaseChanged(dbID string) {
	if s.d.DatabaseChanged != nil {
		s.d.DatabaseChanged(dbID)
	}
	if s.d.NC != nil {
		_ = s.d.NC.Publish(messages.EventDatabaseChanged, []byte(dbID))
	}
}

func (s *Server) toolsChanged(userID string) {
	if s.d.NC != nil {
		_ = s.d.NC.Publish(messages.EventToolsChanged, []byte(userID))
	}
}

func storageError(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		return errUnavailable("storage_unavailable", "storage is unavailable; try again shortly")
	}
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound("not_found", "not found")
	}
	return err
}
