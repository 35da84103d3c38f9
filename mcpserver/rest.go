package mcpserver

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/openanalyst/mcp-integration-service/api"
)

// maxLabel bounds a token's label.
const maxLabel = 200

// tokenRoutes serves /api/mcp/tokens behind the API key.
type tokenRoutes struct {
	store *tokenStore
	// publicBase is OAUTH_REDIRECT_BASE: the service's public URL, when set.
	publicBase string
}

func (t *tokenRoutes) mount(r chi.Router) {
	r.Post("/", t.create)
	r.Get("/", t.list)
	r.Delete("/{token_id}", t.revoke)
}

type createRequest struct {
	UserID     string `json:"user_id"`
	TTLSeconds *int64 `json:"ttl_seconds"`
	Label      string `json:"label"`
}

func (t *tokenRoutes) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := api.Decode(r, &req, false); err != nil {
		api.WriteError(w, err)
		return
	}
	if err := api.RequireUser(req.UserID); err != nil {
		api.WriteError(w, err)
		return
	}
	ttl := DefaultTTL
	if req.TTLSeconds != nil {
		if *req.TTLSeconds < 1 || *req.TTLSeconds > int64(MaxTTL/time.Second) {
			api.WriteError(w, api.Fail(http.StatusBadRequest, "invalid_field", "ttl_seconds must be from 1 to %d (one year)", int64(MaxTTL/time.Second)))
			return
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	req.Label = strings.TrimSpace(req.Label)
	if len(req.Label) > maxLabel {
		api.WriteError(w, api.Fail(http.StatusBadRequest, "invalid_field", "label is longer than %d characters", maxLabel))
		return
	}
	d, token, err := t.store.mint(r.Context(), req.UserID, req.Label, ttl)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusCreated, map[string]any{"token_id": d.ID, "token": token,
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
	if err := api.RequireUser(userID); err != nil {
		api.WriteError(w, err)
		return
	}
	docs, err := t.store.list(r.Context(), userID)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	now := t.store.now()
	out := make([]tokenView, 0, len(docs))
	for _, d := range docs {
		out = append(out, tokenView{TokenID: d.ID, Label: d.Label, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt,
			Revoked: d.RevokedAt != nil, Expired: !now.Before(d.ExpiresAt)})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (t *tokenRoutes) revoke(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if userID == "" {
		var body struct {
			UserID string `json:"user_id"`
		}
		if err := api.Decode(r, &body, true); err != nil {
			api.WriteError(w, err)
			return
		}
		userID = body.UserID
	}
	if err := api.RequireUser(userID); err != nil {
		api.WriteError(w, err)
		return
	}
	id := chi.URLParam(r, "token_id")
	if err := api.CheckID("token_id", id); err != nil {
		api.WriteError(w, err)
		return
	}
	err := t.store.revoke(r.Context(), userID, id)
	if errors.Is(err, errNotFound) {
		api.WriteError(w, api.Fail(http.StatusNotFound, "token_not_found", "token %s not found", api.Clip(id)))
		return
	}
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]bool{"success": true})
}
