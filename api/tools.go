package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/openanalyst/mcp-integration-service/queue"
	"github.com/openanalyst/mcp-integration-service/tools"
)

func (s *Server) toolsList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	userID := q.Get("user_id")
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	f := tools.Filter{Providers: q["provider"], DBID: q.Get("db_id")}
	for _, p := range f.Providers {
		if err := checkSlug("provider", p); err != nil {
			writeError(w, err)
			return
		}
	}
	if f.DBID != "" {
		if err := checkID("db_id", f.DBID); err != nil {
			writeError(w, err)
			return
		}
	}
	list, err := s.d.Tools.List(r.Context(), userID, f)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tools": list})
}

// executeRequest is the body of POST /api/tools/execute.
type executeRequest struct {
	UserID  string          `json:"user_id"`
	Action  string          `json:"action"`
	Params  json.RawMessage `json:"params"`
	MaxRows int             `json:"max_rows"`
	Async   bool            `json:"async"`
}

// parseExecute decodes and checks an execute body. Params stay undecoded:
// the worker decodes them once.
func parseExecute(body []byte) (*executeRequest, error) {
	var req executeRequest
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
	raw, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := parseExecute(raw)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.d.Tools.Execute(r.Context(), tools.Request{UserID: req.UserID, Action: req.Action, Params: req.Params,
		MaxRows: req.MaxRows, Async: req.Async, Actor: actorAPIKey, RequestID: middleware.GetReqID(r.Context()),
		Trace: r.Header.Get("traceparent")})
	switch {
	case err != nil:
		writeError(w, err)
	case res.Queued:
		writeJSON(w, http.StatusAccepted, map[string]string{"job_id": res.JobID, "status": queue.StatusQueued,
			"result_subject": res.ResultSubject})
	default:
		writeRaw(w, http.StatusOK, res.Body) // encoded once, by the worker
	}
}

func (s *Server) jobGet(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	jobID := chi.URLParam(r, "job_id")
	if _, err := uuid.Parse(jobID); err != nil {
		writeError(w, errNotFound("job_not_found", "job %q not found", Clip(jobID)))
		return
	}
	st, err := s.d.Statuses.Get(r.Context(), userID, jobID)
	if errors.Is(err, queue.ErrNoStatus) {
		writeError(w, errNotFound("job_not_found", "job %q not found", jobID))
		return
	}
	if err != nil {
		writeError(w, errUnavailable("broker_unavailable", "the job status store is unavailable"))
		return
	}
	if st.Lost(time.Now()) {
		st.Status, st.Code = queue.StatusFailed, "job_lost"
		st.Error = "no answer was recorded for this read and it can no longer run; it is safe to run it again"
	}
	out := map[string]any{"job_id": st.JobID, "status": st.Status, "created_at": st.CreatedAt}
	if st.FinishedAt != nil {
		out["finished_at"] = st.FinishedAt
	}
	if st.Status == queue.StatusSucceeded {
		out["result"] = st.Result
	}
	if st.Status == queue.StatusFailed {
		out["error"] = st.Error
		out["code"] = st.Code
	}
	writeJSON(w, http.StatusOK, out)
}
