package mcpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/openanalyst/mcp-integration-service/messages"
)

// maxBody bounds the token routes' bodies.
const maxBody = 64 << 10

// maxLabel bounds a token's label.
const maxLabel = 200

// httpError is an error with its HTTP status and stable code, written in the
// API's envelope {"success":false,"error":…,"code":…}.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(code, format string, args ...any) *httpError {
	return &httpError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"success":false,"error":"response encoding failed","code":"internal_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, errUnavailable):
		he = &httpError{status: http.StatusServiceUnavailable, code: "storage_unavailable", msg: "storage is unavailable; try again shortly"}
	default:
		he = &httpError{status: http.StatusInternalServerError, code: "internal_error", msg: "internal error"}
	}
	writeJSON(w, he.status, messages.ErrorBody{Success: false, Error: he.msg, Code: he.code})
}

// decode reads a JSON object body: 413 when too large, 400 when malformed.
// An empty body is allowed when emptyOK (DELETE may carry its user_id in the
// query instead).
func decode(r *http.Request, v any, emptyOK bool) error {
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return &httpError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
					msg: fmt.Sprintf("request body exceeds %d bytes", maxBody)}
			}
			return badRequest("invalid_json", "request body could not be read")
		}
	}
	if strings.TrimSpace(string(body)) == "" {
		if emptyOK {
			return nil
		}
		return badRequest("invalid_json", "request body is empty; a JSON object is expected")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badRequest("invalid_field", "field %q has the wrong type", te.Field)
		}
		return badRequest("invalid_json", "malformed JSON: %v", err)
	}
	return nil
}

func requireUser(userID string) error {
	if strings.TrimSpace(userID) == "" {
		return badRequest("missing_field", "user_id is required")
	}
	if len(userID) > 256 {
		return badRequest("invalid_field", "user_id is longer than 256 characters")
	}
	return nil
}

// tokenRoutes serves /api/mcp/tokens behind the API key.
type tokenRoutes struct {
	store *tokenStore
	// publicBase is OAUTH_REDIRECT_BASE: the service's public URL, when set.
	publicBase string
}

func (t *tokenRoutes) mount(r chi.Router) {
	r.Post("/mcp/tokens", t.create)
	r.Get("/mcp/tokens", t.list)
	r.Delete("/mcp/tokens/{token_id}", t.revoke)
}

type createRequest struct {
	UserID     string `json:"user_id"`
	TTLSeconds *int64 `json:"ttl_seconds"`
	Label      string `json:"label"`
}

func (t *tokenRoutes) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decode(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	if err := requireUser(req.UserID); err != nil {
		writeError(w, err)
		return
	}
	ttl := DefaultTTL
	if req.TTLSeconds != nil {
		if *req.TTLSeconds < 1 || *req.TTLSeconds > int64(MaxTTL/time.Second) {
			writeError(w, badRequest("invalid_field", "ttl_seconds must be from 1 to %d (one year)", int64(MaxTTL/time.Second)))
			return
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	req.Label = strings.TrimSpace(req.Label)
	if len(req.Label) > maxLabel {
		writeError(w, badRequest("invalid_field", "label is longer than %d characters", maxLabel))
		return
	}
	d, token, err := t.store.mint(r.Context(), req.UserID, req.Label, ttl)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"token_id": d.ID, "token": token,
		"mcp_url": t.baseURL(r) + "/mcp", "expires_at": d.ExpiresAt})
}

// baseURL is the public base URL: OAUTH_REDIRECT_BASE when set, else the
// scheme and Host the caller used.
func (t *tokenRoutes) baseURL(r *http.Request) string {
	if t.publicBase != "" {
		return strings.TrimRight(t.publicBase, "/")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type tokenView struct {
	TokenID   string    `json:"token_id"`
	Label     string    `json:"label"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Revoked   bool      `json:"revoked"`
	Expired   bool      `json:"expired"`
}

func (t *tokenRoutes) list(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	docs, err := t.store.list(r.Context(), userID)
	if err != nil {
		writeError(w, err)
		return
	}
	now := t.store.now()
	out := make([]tokenView, 0, len(docs))
	for _, d := range docs {
		out = append(out, tokenView{TokenID: d.ID, Label: d.Label, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt,
			Revoked: d.RevokedAt != nil, Expired: !now.Before(d.ExpiresAt)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (t *tokenRoutes) revoke(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if userID == "" {
		var body struct {
			UserID string `json:"user_id"`
		}
		if err := decode(r, &body, true); err != nil {
			writeError(w, err)
			return
		}
		userID = body.UserID
	}
	if err := requireUser(userID); err != nil {
		writeError(w, err)
		return
	}
	id := chi.URLParam(r, "token_id")
	err := t.store.revoke(r.Context(), userID, id)
	if errors.Is(err, errNotFound) {
		writeError(w, &httpError{status: http.StatusNotFound, code: "token_not_found", msg: fmt.Sprintf("token %q not found", id)})
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}
