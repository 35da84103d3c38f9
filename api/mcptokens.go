package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/openanalyst/mcp-integration-service/storage"
)

// Token lifetimes and label bound of /api/mcp/tokens.
const (
	// defaultTokenTTL is the lifetime of a token minted without ttl_seconds.
	defaultTokenTTL = 30 * 24 * time.Hour
	// maxTokenTTL is the longest lifetime a token may have.
	maxTokenTTL = 365 * 24 * time.Hour
	// maxLabel bounds a token's label.
	maxLabel = 200
)

// tokenStore returns the token store once every check of a call passed
// (the first refusal otherwise): a 503 when the node has none.
func (s *Server) tokenStore(checks ...error) (*storage.Tokens, error) {
	for _, err := range checks {
		if err != nil {
			return nil, err
		}
	}
	if s.d.Tokens == nil {
		return nil, errUnavailable("mcp_tokens_unavailable", "MCP tokens are not available on this node")
	}
	return s.d.Tokens, nil
}

type createTokenRequest struct {
	UserID     string `json:"user_id"`
	TTLSeconds *int64 `json:"ttl_seconds"`
	Label      string `json:"label"`
}

// ttl is the requested lifetime: defaultTokenTTL when unset, at most one year.
func (req *createTokenRequest) ttl() (time.Duration, error) {
	if req.TTLSeconds == nil {
		return defaultTokenTTL, nil
	}
	maxSec := int64(maxTokenTTL / time.Second)
	if *req.TTLSeconds < 1 || *req.TTLSeconds > maxSec {
		return 0, errBadRequest("invalid_field", "ttl_seconds must be from 1 to %d (one year)", maxSec)
	}
	return time.Duration(*req.TTLSeconds) * time.Second, nil
}

// checkLabel bounds a token's label.
func checkLabel(label string) error {
	if len(label) > maxLabel {
		return errBadRequest("invalid_field", "label is longer than %d characters", maxLabel)
	}
	return nil
}

// tokenCreate is POST /api/mcp/tokens: the token is shown once, here.
func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request) {
	var req createTokenRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	req.Label = strings.TrimSpace(req.Label)
	ttl, ttlErr := req.ttl()
	ts, err := s.tokenStore(requireUser(req.UserID), ttlErr, checkLabel(req.Label))
	if err != nil {
		writeError(w, err)
		return
	}
	d, token, err := ts.Mint(r.Context(), req.UserID, req.Label, ttl)
	if err != nil {
		writeError(w, storageError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"token_id": d.ID, "token": token,
		"mcp_url": s.baseURL(r) + "/mcp", "expires_at": d.ExpiresAt})
}

// baseURL is the public base URL: OAUTH_REDIRECT_BASE when set, else the
// scheme and Host the caller used.
func (s *Server) baseURL(r *http.Request) string {
	if s.d.PublicBase != "" {
		return strings.TrimRight(s.d.PublicBase, "/")
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

// tokenList is GET /api/mcp/tokens?user_id=: a user's tokens, never the
// tokens themselves.
func (s *Server) tokenList(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	ts, err := s.tokenStore(requireUser(userID))
	if err != nil {
		writeError(w, err)
		return
	}
	docs, err := ts.List(r.Context(), userID)
	if err != nil {
		writeError(w, storageError(err))
		return
	}
	now := time.Now()
	out := make([]tokenView, 0, len(docs))
	for _, d := range docs {
		out = append(out, tokenView{TokenID: d.ID, Label: d.Label, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt,
			Revoked: d.RevokedAt != nil, Expired: d.Expired(now)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// tokenRevoke is DELETE /api/mcp/tokens/{token_id}, the user_id in the
// query or the body.
func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if userID == "" {
		var body struct {
			UserID string `json:"user_id"`
		}
		if err := decodeBody(r, &body, true); err != nil {
			writeError(w, err)
			return
		}
		userID = body.UserID
	}
	id := chi.URLParam(r, "token_id")
	ts, err := s.tokenStore(requireUser(userID), checkID("token_id", id))
	if err != nil {
		writeError(w, err)
		return
	}
	err = ts.Revoke(r.Context(), userID, id)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, errNotFound("token_not_found", "token %s not found", Clip(id)))
		return
	}
	if err != nil {
		writeError(w, storageError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}
