package composiotest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ---- JSON shapes ------------------------------------------------------------

func (t *toolkitDef) json(toolsCount int) map[string]any {
	return map[string]any{
		"slug": t.Slug,
		"name": t.Name,
		"meta": map[string]any{
			"description":    t.Description,
			"logo":           t.Logo,
			"app_url":        t.AppURL,
			"categories":     t.Categories,
			"tools_count":    toolsCount,
			"triggers_count": 0,
			"created_at":     "2024-05-03T11:44:32.061Z",
			"updated_at":     "2025-09-09T10:00:00.000Z",
		},
		"auth_schemes":                  []string{"OAUTH2"},
		"composio_managed_auth_schemes": []string{"OAUTH2"},
		"no_auth":                       false,
		"is_local_toolkit":              false,
	}
}

func (s *Server) toolJSON(t *toolDef) map[string]any {
	tk := s.findToolkit(t.Toolkit)
	return map[string]any{
		"slug":               t.Slug,
		"name":               t.Name,
		"description":        t.Description,
		"input_parameters":   t.Input,
		"output_parameters":  t.Output,
		"toolkit":            map[string]any{"slug": tk.Slug, "name": tk.Name, "logo": tk.Logo},
		"version":            toolVersion,
		"available_versions": []string{toolVersion},
		"no_auth":            false,
		"is_deprecated":      false,
		"tags":               t.Tags,
		"scopes":             []string{},
	}
}

func accountJSON(a *Account) map[string]any {
	data := copyMap(a.Data)
	if data == nil {
		data = map[string]any{}
	}
	val := copyMap(data)
	val["status"] = a.Status
	var reason any
	if a.StatusReason != "" {
		reason = a.StatusReason
	}
	return map[string]any{
		"id":            a.ID,
		"user_id":       a.UserID,
		"status":        a.Status,
		"status_reason": reason,
		"is_disabled":   a.Status == StatusInactive,
		"toolkit":       map[string]any{"slug": a.Toolkit},
		"auth_config":   map[string]any{"id": a.AuthConfigID, "is_composio_managed": true, "is_disabled": false},
		"data":          data,
		"state":         map[string]any{"authScheme": "OAUTH2", "val": val},
		"alias":         a.Alias,
		"created_at":    a.CreatedAt.Format(time.RFC3339Nano),
		"updated_at":    a.UpdatedAt.Format(time.RFC3339Nano),
	}
}

// ---- pagination -------------------------------------------------------------

// paginate cuts one page out of items, following Composio's envelope.
func (s *Server) paginate(r *http.Request, items []any) (map[string]any, error) {
	size := s.cfg.pageSize
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 1 || math.IsInf(n, 0) {
			return nil, fmt.Errorf("%w: limit must be a positive number", errBadRequest)
		}
		size = min(size, int(n))
	}
	offset := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err == nil {
			offset, err = strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		}
		if err != nil || offset < 0 || !strings.HasPrefix(string(b), "offset:") {
			return nil, fmt.Errorf("%w: invalid cursor %q", errBadRequest, c)
		}
	}
	offset = min(offset, len(items))
	end := min(offset+size, len(items))
	var next any
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	pages := (len(items) + size - 1) / size
	return map[string]any{
		"items":        items[offset:end],
		"next_cursor":  next,
		"total_pages":  pages,
		"current_page": offset/size + 1,
		"total_items":  len(items),
	}, nil
}

// queryList reads a query array sent comma-separated or repeated.
func queryList(q url.Values, key string) []string {
	var out []string
	for _, v := range q[key] {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func matches(filter []string, v string) bool {
	return len(filter) == 0 || slices.Contains(filter, v)
}

func badRequest(w http.ResponseWriter, err error) {
	msg := strings.TrimPrefix(err.Error(), errBadRequest.Error()+": ")
	writeError(w, http.StatusBadRequest, msg, "BadRequest")
}

// ---- toolkits ---------------------------------------------------------------

func (s *Server) findToolkit(slug string) *toolkitDef {
	for _, t := range s.toolkits {
		if strings.EqualFold(t.Slug, slug) {
			return t
		}
	}
	return nil
}

func (s *Server) toolsCount(slug string) int {
	n := 0
	for _, t := range s.tools {
		if t.Toolkit == slug {
			n++
		}
	}
	return n
}

func (s *Server) listToolkits(w http.ResponseWriter, r *http.Request) {
	search := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("search")))
	s.mu.Lock()
	var items []any
	for _, t := range s.toolkits {
		if search != "" && !strings.Contains(strings.ToLower(t.Slug+" "+t.Name+" "+t.Description), search) {
			continue
		}
		items = append(items, t.json(s.toolsCount(t.Slug)))
	}
	s.mu.Unlock()
	page, err := s.paginate(r, nonNil(items))
	if err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getToolkit(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	s.mu.Lock()
	t := s.findToolkit(slug)
	var out map[string]any
	if t != nil {
		out = t.json(s.toolsCount(t.Slug))
	}
	s.mu.Unlock()
	if t == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Toolkit %s not found", slug), "ToolkitNotFound")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- tools ------------------------------------------------------------------

func (s *Server) findTool(slug string) *toolDef {
	for _, t := range s.tools {
		if strings.EqualFold(t.Slug, slug) {
			return t
		}
	}
	return nil
}

func (s *Server) listTools(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	toolkits := append(queryList(q, "toolkit_slug"), queryList(q, "toolkit_slugs")...)
	for i := range toolkits {
		toolkits[i] = strings.ToLower(toolkits[i])
	}
	slugs := queryList(q, "tool_slugs")
	for i := range slugs {
		slugs[i] = strings.ToUpper(slugs[i])
	}
	tags := queryList(q, "tags")
	search := strings.ToLower(strings.TrimSpace(q.Get("search")))
	s.mu.Lock()
	var items []any
	for _, t := range s.tools {
		if !matches(toolkits, t.Toolkit) || !matches(slugs, t.Slug) {
			continue
		}
		if len(tags) > 0 && !slices.ContainsFunc(tags, func(tag string) bool { return slices.Contains(t.Tags, tag) }) {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(t.Slug+" "+t.Name+" "+t.Description), search) {
			continue
		}
		items = append(items, s.toolJSON(t))
	}
	s.mu.Unlock()
	page, err := s.paginate(r, nonNil(items))
	if err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getTool(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	s.mu.Lock()
	t := s.findTool(slug)
	var out map[string]any
	if t != nil {
		out = s.toolJSON(t)
	}
	s.mu.Unlock()
	if t == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Tool %s not found", slug), "ToolNotFound")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) executeTool(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	var req struct {
		UserID             string          `json:"user_id"`
		EntityID           string          `json:"entity_id"`
		ConnectedAccountID string          `json:"connected_account_id"`
		Arguments          json.RawMessage `json:"arguments"`
		Version            string          `json:"version"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, err)
		return
	}
	userID := req.UserID
	if userID == "" {
		userID = req.EntityID
	}
	args := map[string]any{}
	if len(req.Arguments) > 0 && string(req.Arguments) != "null" {
		if err := json.Unmarshal(req.Arguments, &args); err != nil {
			writeError(w, http.StatusBadRequest, "arguments must be a JSON object", "BadRequest")
			return
		}
	}

	s.mu.Lock()
	t := s.findTool(slug)
	if t == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("Tool %s not found", slug), "ToolNotFound")
		return
	}
	if req.Version != "" && req.Version != "latest" && req.Version != toolVersion {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Version %s not found for tool %s", req.Version, t.Slug), "ToolVersionNotFound")
		return
	}
	acct, status, msg, code := s.resolveAccount(t, userID, req.ConnectedAccountID)
	if acct == nil {
		s.mu.Unlock()
		writeError(w, status, msg, code)
		return
	}
	call := ToolCall{Tool: t.Slug, Arguments: copyMap(args), Account: snapshot(acct)}
	handler := s.handlers[t.Slug]
	s.mu.Unlock()

	var data any = map[string]any{}
	errMsg := validateArgs(t, args)
	if errMsg == "" {
		out, err := handler(call)
		switch {
		case err != nil:
			errMsg = err.Error()
		case out != nil:
			data = out
		}
	}
	logID := newID("log_")
	ok := errMsg == ""

	s.mu.Lock()
	s.executions = append(s.executions, Execution{
		Tool: t.Slug, UserID: userID, ConnectedAccountID: acct.ID, Arguments: copyMap(args),
		Version: req.Version, Successful: ok, Error: errMsg, LogID: logID,
	})
	s.mu.Unlock()

	resp := map[string]any{"data": data, "log_id": logID, "error": nil}
	if !ok {
		resp["error"] = errMsg
	}
	if s.cfg.legacySpelling {
		resp["successfull"] = ok //nolint:misspell // Composio's old field name
	} else {
		resp["successful"] = ok
	}
	writeJSON(w, http.StatusOK, resp)
}

// resolveAccount finds the account a tool runs on. Called with s.mu held.
func (s *Server) resolveAccount(t *toolDef, userID, id string) (acct *Account, status int, msg, code string) {
	if id == "" {
		if userID == "" {
			return nil, http.StatusBadRequest, "Either user_id or connected_account_id is required", "BadRequest"
		}
		for _, a := range s.accounts {
			if !a.Deleted && a.UserID == userID && a.Toolkit == t.Toolkit && a.Status == StatusActive &&
				(acct == nil || a.seq > acct.seq) {
				acct = a
			}
		}
		if acct == nil {
			return nil, http.StatusBadRequest, "No connected account found for this user and toolkit", "ConnectedAccountNotFound"
		}
		return acct, 0, "", ""
	}
	acct, ok := s.accounts[id]
	if !ok || acct.Deleted {
		return nil, http.StatusNotFound, fmt.Sprintf("Connected account %s not found", id), "ConnectedAccountNotFound"
	}
	if userID != "" && acct.UserID != userID {
		return nil, http.StatusBadRequest, fmt.Sprintf("Connected account %s does not belong to user %s", id, userID), "ConnectedAccountUserMismatch"
	}
	if acct.Toolkit != t.Toolkit {
		return nil, http.StatusBadRequest, fmt.Sprintf("Connected account %s is for toolkit %s, not %s", id, acct.Toolkit, t.Toolkit), "ToolkitMismatch"
	}
	if acct.Status != StatusActive {
		return nil, http.StatusBadRequest, fmt.Sprintf("Connected account %s is not active (status %s)", id, acct.Status), "ConnectedAccountNotActive"
	}
	return acct, 0, "", ""
}

// validateArgs checks required arguments and simple JSON Schema types, and
// returns Composio-style error text, or "".
func validateArgs(t *toolDef, args map[string]any) string {
	var missing []string
	for _, k := range t.required {
		if v, ok := args[k]; !ok || v == nil || v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("Invalid request data provided - Following fields are missing: %s", strings.Join(missing, ", "))
	}
	var bad []string
	for k, v := range args {
		want, ok := t.props[k]
		if !ok || v == nil {
			continue
		}
		if !hasType(v, want) {
			bad = append(bad, fmt.Sprintf("%s should be of type %s", k, want))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return "Invalid request data provided - " + strings.Join(bad, "; ")
	}
	return ""
}

func hasType(v any, want string) bool {
	switch want {
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return true
}

// ---- connected accounts -----------------------------------------------------

func (s *Server) createLink(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AuthConfigID string `json:"auth_config_id"`
		UserID       string `json:"user_id"`
		CallbackURL  string `json:"callback_url"`
		Alias        string `json:"alias"`
	}
	if err := decodeBody(r, &req); err != nil {
		badRequest(w, err)
		return
	}
	var missing []string
	if strings.TrimSpace(req.AuthConfigID) == "" {
		missing = append(missing, "auth_config_id")
	}
	if strings.TrimSpace(req.UserID) == "" {
		missing = append(missing, "user_id")
	}
	if len(missing) > 0 {
		writeError(w, http.StatusBadRequest, "Invalid request data provided - Following fields are missing: "+strings.Join(missing, ", "), "BadRequest")
		return
	}
	if req.CallbackURL != "" {
		u, err := url.Parse(req.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			writeError(w, http.StatusBadRequest, "callback_url must be an absolute http(s) URL", "BadRequest")
			return
		}
	}
	s.mu.Lock()
	toolkit, ok := s.cfg.authConfigs[req.AuthConfigID]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Auth config %s not found", req.AuthConfigID), "AuthConfigNotFound")
		return
	}
	now := s.now().UTC()
	s.seq++
	a := &Account{
		ID:            newID("ca_"),
		UserID:        req.UserID,
		Toolkit:       toolkit,
		AuthConfigID:  req.AuthConfigID,
		Status:        StatusInitiated,
		Alias:         req.Alias,
		CallbackURL:   req.CallbackURL,
		LinkToken:     newID("lt_"),
		LinkExpiresAt: now.Add(s.cfg.linkTTL),
		CreatedAt:     now,
		UpdatedAt:     now,
		seq:           s.seq,
	}
	s.accounts[a.ID] = a
	s.links[a.LinkToken] = a.ID
	resp := map[string]any{
		"connected_account_id": a.ID,
		"link_token":           a.LinkToken,
		"redirect_url":         s.cfg.publicURL + "/consent/" + url.PathEscape(a.LinkToken),
		"expires_at":           a.LinkExpiresAt.Format(time.RFC3339Nano),
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	a, ok := s.accounts[id]
	var out map[string]any
	if ok && !a.Deleted {
		out = accountJSON(a)
	}
	s.mu.Unlock()
	if out == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Connected account %s not found", id), "ConnectedAccountNotFound")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	users := queryList(q, "user_ids")
	toolkits := queryList(q, "toolkit_slugs")
	statuses := queryList(q, "statuses")
	configs := queryList(q, "auth_config_ids")
	s.mu.Lock()
	var accts []*Account
	for _, a := range s.accounts {
		if a.Deleted || !matches(users, a.UserID) || !matches(toolkits, a.Toolkit) ||
			!matches(statuses, a.Status) || !matches(configs, a.AuthConfigID) {
			continue
		}
		accts = append(accts, a)
	}
	// Newest first, as Composio orders by created_at descending.
	slices.SortFunc(accts, func(x, y *Account) int { return y.seq - x.seq })
	items := make([]any, 0, len(accts))
	for _, a := range accts {
		items = append(items, accountJSON(a))
	}
	s.mu.Unlock()
	page, err := s.paginate(r, items)
	if err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	a, ok := s.accounts[id]
	if ok && !a.Deleted {
		a.Deleted = true
		a.UpdatedAt = s.now().UTC()
		s.deleted = append(s.deleted, id)
	} else {
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Connected account %s not found", id), "ConnectedAccountNotFound")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true})
}

// ---- consent page -----------------------------------------------------------

// consent is the page a link's redirect_url points to. Opening it stands for
// the user completing the provider's consent screen. Query parameters:
// deny=1 refuses consent; legacy=1 uses the older camel case callback.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	q := r.URL.Query()
	deny := truthy(q.Get("deny")) || q.Get("error") != ""

	s.mu.Lock()
	id, ok := s.links[token]
	a := s.accounts[id]
	if !ok || a == nil || a.Deleted {
		s.mu.Unlock()
		consentPage(w, http.StatusNotFound, "Unknown link", "This connection link does not exist.")
		return
	}
	now := s.now().UTC()
	if a.Status != StatusInitiated {
		s.mu.Unlock()
		consentPage(w, http.StatusConflict, "Link already used", "This connection link was already used.")
		return
	}
	if now.After(a.LinkExpiresAt) {
		s.mu.Unlock()
		consentPage(w, http.StatusGone, "Link expired", "This connection link has expired. Please start again.")
		return
	}
	result := "success"
	switch {
	case deny:
		result = "failed"
		a.Status = StatusFailed
		a.StatusReason = "User denied access (access_denied)"
	default:
		outcome := StatusActive
		if o, ok := s.outcomes[a.ID]; ok {
			outcome = o
			delete(s.outcomes, a.ID)
		} else if len(s.nextOutcomes) > 0 {
			outcome = s.nextOutcomes[0]
			s.nextOutcomes = s.nextOutcomes[1:]
		}
		a.Status = outcome
		switch outcome {
		case StatusActive:
			a.Data = connectionData(a.Toolkit, a.UserID)
		case StatusExpired:
			a.Data = connectionData(a.Toolkit, a.UserID)
			a.StatusReason = "Access token expired and could not be refreshed"
		case StatusFailed:
			a.StatusReason = "OAuth token exchange failed: invalid_grant"
		default:
			a.StatusReason = "Connection ended in status " + outcome
		}
	}
	a.UpdatedAt = now
	callback, toolkit, accountID := a.CallbackURL, a.Toolkit, a.ID
	legacy := s.cfg.legacyCallback || truthy(q.Get("legacy"))
	s.mu.Unlock()

	if callback == "" {
		if result == "success" {
			consentPage(w, http.StatusOK, "Connected", "Your account is connected. You can close this window.")
		} else {
			consentPage(w, http.StatusOK, "Not connected", "The connection was not completed. You can close this window.")
		}
		return
	}
	u, err := url.Parse(callback)
	if err != nil {
		consentPage(w, http.StatusBadRequest, "Bad callback", "The callback URL is invalid.")
		return
	}
	cq := u.Query()
	cq.Set("status", result)
	if legacy {
		cq.Set("connectedAccountId", accountID)
		cq.Set("appName", toolkit)
	} else {
		cq.Set("connected_account_id", accountID)
	}
	u.RawQuery = cq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "y", "on":
		return true
	}
	return false
}

func consentPage(w http.ResponseWriter, status int, heading, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<!doctype html><html><head><title>%s</title></head><body><h1>%s</h1><p>%s</p><p><small>Composio sandbox</small></p></body></html>\n",
		html.EscapeString(heading), html.EscapeString(heading), html.EscapeString(text))
}

func nonNil(items []any) []any {
	if items == nil {
		return []any{}
	}
	return items
}
