package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/openanalyst/mcp-integration-service/connectors"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

// Tool is one entry of GET /api/tools: the design document's shape plus the
// JSON Schema of its input.
type Tool struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Provider    string            `json:"provider"`
	Parameters  map[string]string `json:"parameters"`
	InputSchema json.RawMessage   `json:"input_schema"`
}

// Tools lists every tool of a user: one set per saved database, then the
// tools of the user's active integrations.
func (s *Server) Tools(ctx context.Context, userID string) ([]Tool, error) {
	dbs, err := s.d.Store.ListDatabases(ctx, userID)
	if err != nil {
		return nil, storageError(err)
	}
	tools := []Tool{}
	for _, db := range dbs {
		drv, ok := connectors.Lookup(db.DBType)
		if !ok {
			continue
		}
		for _, t := range drv.Tools() {
			tools = append(tools, Tool{
				Name:        t.Prefix + "_" + db.ID,
				Description: fmt.Sprintf(t.Description, db.Name, drv.Info().Name),
				Provider:    db.DBType,
				Parameters:  t.Parameters,
				InputSchema: t.InputSchema,
			})
		}
	}
	if s.d.Integrations != nil {
		more, err := s.d.Integrations.Tools(ctx, userID)
		if err != nil {
			return nil, err
		}
		tools = append(tools, more...)
	}
	return tools, nil
}

func (s *Server) toolsList(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	tools, err := s.Tools(r.Context(), userID)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tools": tools})
}

// ExecuteRequest is the body of POST /api/tools/execute.
type ExecuteRequest struct {
	UserID  string          `json:"user_id"`
	Action  string          `json:"action"`
	Params  json.RawMessage `json:"params"`
	MaxRows int             `json:"max_rows"`
	Async   bool            `json:"async"`
}

// ParseExecute decodes and checks an execute body.
func ParseExecute(body []byte) (*ExecuteRequest, error) {
	var req ExecuteRequest
	if err := decodeBytes(body, &req); err != nil {
		return nil, err
	}
	if err := requireUser(req.UserID); err != nil {
		return nil, err
	}
	if err := CheckAction(req.Action); err != nil {
		return nil, err
	}
	if p := bytes.TrimSpace(req.Params); len(p) > 0 && !bytes.Equal(p, []byte("null")) && p[0] != '{' {
		return nil, errBadRequest("invalid_field", "params must be a JSON object")
	}
	if req.MaxRows < 0 {
		return nil, errBadRequest("invalid_field", "max_rows must be positive")
	}
	return &req, nil
}

func (s *Server) toolsExecute(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	raw, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := ParseExecute(raw)
	if err != nil {
		writeError(w, err)
		return
	}
	payload := messages.ExecutePayload{Action: req.Action, Params: req.Params, MaxRows: req.MaxRows, Async: req.Async}
	job := queue.Job{Kind: messages.KindExecute, UserID: req.UserID, Payload: payload}
	if !req.Async {
		status, jobID := s.dispatch(w, r, job)
		s.audit(r.Context(), "tool.execute", req.UserID, req.Action, status, start, jobID)
		return
	}
	job.JobID = uuid.NewString()
	job.RequestID = middleware.GetReqID(r.Context())
	job.Trace = r.Header.Get("traceparent")
	now := time.Now().UTC()
	if err := s.d.Statuses.Create(r.Context(), &queue.Status{JobID: job.JobID, UserID: req.UserID, Kind: job.Kind,
		Status: queue.StatusQueued, CreatedAt: now}); err != nil {
		writeError(w, errUnavailable("broker_unavailable", "the job status store is unavailable"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.d.Dispatcher.Enqueue(ctx, job); err != nil {
		writeError(w, errUnavailable("broker_unavailable", "the job queue is unavailable: "+strings.TrimPrefix(err.Error(), "queue: ")))
		return
	}
	s.audit(r.Context(), "tool.execute_async", req.UserID, req.Action, http.StatusAccepted, start, job.JobID)
	writeJSON(w, http.StatusAccepted, map[string]string{"job_id": job.JobID, "status": queue.StatusQueued,
		"result_subject": messages.ResultSubject(req.UserID, job.JobID)})
}

func (s *Server) jobGet(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	jobID := chi.URLParam(r, "job_id")
	// A malformed id is unknown, like another user's (404), and is not
	// echoed: only a well-formed UUID is.
	if _, err := uuid.Parse(jobID); err != nil || len(jobID) != 36 {
		writeError(w, errNotFound("job_not_found", "job not found"))
		return
	}
	st, err := s.d.Statuses.Get(r.Context(), userID, jobID)
	if errors.Is(err, queue.ErrNoStatus) {
		writeError(w, errNotFound("job_not_found", "job %s not found", jobID))
		return
	}
	if err != nil {
		writeError(w, errUnavailable("broker_unavailable", "the job status store is unavailable"))
		return
	}
	out := map[string]any{"job_id": st.JobID, "status": st.Status, "created_at": st.CreatedAt}
	if st.FinishedAt != nil {
		out["finished_at"] = st.FinishedAt
	}
	if st.Status == queue.StatusSucceeded {
		out["result"] = json.RawMessage(withSuccess(true, st.Result))
	}
	if st.Status == queue.StatusFailed {
		out["error"] = st.Error
		out["code"] = st.Code
	}
	writeJSON(w, http.StatusOK, out)
}

// Execute runs one tool of a user synchronously, through the same queue and
// workers as POST /api/tools/execute. The reply body is the JSON object the
// REST call would answer, without "success". An error is an infrastructure
// fault or a timeout (its message carries the job id).
func (s *Server) Execute(ctx context.Context, userID, action string, params json.RawMessage) (queue.Reply, error) {
	start := time.Now()
	jobID, rep, err := s.Submit(ctx, queue.Job{Kind: messages.KindExecute, UserID: userID,
		Payload: messages.ExecutePayload{Action: action, Params: params}})
	status := rep.Status
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		status = ae.status
	case err != nil:
		status = http.StatusInternalServerError
	case rep.Outcome == messages.OutcomeOK:
		status = http.StatusOK
	}
	s.audit(ctx, "tool.execute", userID, action, status, start, jobID)
	return rep, err
}
