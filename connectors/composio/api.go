package composio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ListToolkits returns every toolkit whose name or description matches
// search (all toolkits when search is empty), following pagination to the
// end.
func (c *Client) ListToolkits(ctx context.Context, search string) ([]Toolkit, error) {
	q := url.Values{}
	if s := strings.TrimSpace(search); s != "" {
		q.Set("search", s)
	}
	return list[Toolkit](ctx, c, call{op: "ListToolkits", method: http.MethodGet, path: "/toolkits", query: q})
}

// GetToolkit returns one toolkit by slug; ErrNotFound when it does not exist.
func (c *Client) GetToolkit(ctx context.Context, slug string) (*Toolkit, error) {
	const op = "GetToolkit"
	seg, err := segment(op, "toolkit slug", slug)
	if err != nil {
		return nil, err
	}
	var t Toolkit
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/toolkits/" + seg, idempotent: true}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateLink creates a hosted connection link (POST
// /connected_accounts/link) and the INITIATED account behind it. It is not
// idempotent, so it is never retried: on a 429 or 5xx the caller decides.
func (c *Client) CreateLink(ctx context.Context, req LinkRequest) (*Link, error) {
	const op = "CreateLink"
	if strings.TrimSpace(req.AuthConfigID) == "" {
		return nil, fmt.Errorf("composio: %s: auth config id is required", op)
	}
	if strings.TrimSpace(req.UserID) == "" {
		return nil, fmt.Errorf("composio: %s: user id is required", op)
	}
	var l Link
	cl := call{op: op, method: http.MethodPost, path: "/connected_accounts/link", body: req}
	if err := c.do(ctx, cl, &l); err != nil {
		return nil, err
	}
	if l.RedirectURL == "" || l.ConnectedAccountID == "" {
		return nil, c.newError(cl, http.StatusOK,
			errors.New("answer lacks redirect_url or connected_account_id"))
	}
	return &l, nil
}

// GetConnectedAccount returns one connected account; ErrNotFound when it does
// not exist or was deleted.
func (c *Client) GetConnectedAccount(ctx context.Context, id string) (*ConnectedAccount, error) {
	const op = "GetConnectedAccount"
	seg, err := segment(op, "connected account id", id)
	if err != nil {
		return nil, err
	}
	var a ConnectedAccount
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/connected_accounts/" + seg, idempotent: true}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// ListConnectedAccounts returns every connected account that matches opts,
// following pagination to the end.
func (c *Client) ListConnectedAccounts(ctx context.Context, opts ListAccountsOptions) ([]ConnectedAccount, error) {
	q := url.Values{}
	setList(q, "user_ids", opts.UserIDs)
	setList(q, "toolkit_slugs", opts.ToolkitSlugs)
	setList(q, "statuses", opts.Statuses)
	setList(q, "auth_config_ids", opts.AuthConfigIDs)
	return list[ConnectedAccount](ctx, c, call{op: "ListConnectedAccounts", method: http.MethodGet, path: "/connected_accounts", query: q})
}

// DeleteConnectedAccount deletes a connected account at Composio, revoking
// the service's access to it. A missing account yields ErrNotFound, which a
// caller disconnecting the account may treat as success (a retried DELETE
// whose first answer was lost also ends that way).
func (c *Client) DeleteConnectedAccount(ctx context.Context, id string) error {
	const op = "DeleteConnectedAccount"
	seg, err := segment(op, "connected account id", id)
	if err != nil {
		return err
	}
	var out struct {
		Success *bool `json:"success"`
	}
	cl := call{op: op, method: http.MethodDelete, path: "/connected_accounts/" + seg, idempotent: true}
	if err := c.do(ctx, cl, &out); err != nil {
		return err
	}
	if out.Success != nil && !*out.Success {
		return c.newError(cl, http.StatusOK, errors.New("composio answered success=false"))
	}
	return nil
}

// ListTools returns every tool of a toolkit (GET /tools?toolkit_slug=),
// following pagination to the end.
func (c *Client) ListTools(ctx context.Context, toolkitSlug string) ([]Tool, error) {
	const op = "ListTools"
	if strings.TrimSpace(toolkitSlug) == "" {
		return nil, fmt.Errorf("composio: %s: toolkit slug is required", op)
	}
	q := url.Values{"toolkit_slug": {toolkitSlug}}
	return list[Tool](ctx, c, call{op: op, method: http.MethodGet, path: "/tools", query: q})
}

// GetTool returns one tool by slug; ErrNotFound when it does not exist.
func (c *Client) GetTool(ctx context.Context, slug string) (*Tool, error) {
	const op = "GetTool"
	seg, err := segment(op, "tool slug", slug)
	if err != nil {
		return nil, err
	}
	var t Tool
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/tools/" + seg, idempotent: true}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ExecuteTool runs a tool (POST /tools/execute/{slug}). Running a tool is not
// idempotent (it may send an email), so it is never retried.
//
// A tool that ran but failed is reported in the result (Successful false,
// Error set), with a nil error; the error is for calls Composio refused or
// could not answer.
func (c *Client) ExecuteTool(ctx context.Context, slug string, req ExecuteRequest) (*ExecuteResult, error) {
	const op = "ExecuteTool"
	seg, err := segment(op, "tool slug", slug)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.UserID) == "" && strings.TrimSpace(req.ConnectedAccountID) == "" {
		return nil, fmt.Errorf("composio: %s: user id or connected account id is required", op)
	}
	args, err := argumentsJSON(req.Arguments)
	if err != nil {
		return nil, fmt.Errorf("composio: %s: %w", op, err)
	}
	req.Arguments = args
	var res ExecuteResult
	if err := c.do(ctx, call{op: op, method: http.MethodPost, path: "/tools/execute/" + seg, body: req}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// argumentsJSON encodes tool arguments, which must form a JSON object.
func argumentsJSON(v any) (json.RawMessage, error) {
	var b []byte
	switch a := v.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		b = a
	case []byte:
		b = a
	default:
		var err error
		if b, err = json.Marshal(a); err != nil {
			return nil, fmt.Errorf("encode arguments: %w", err)
		}
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return json.RawMessage("{}"), nil
	}
	if b[0] != '{' || !json.Valid(b) {
		return nil, errors.New("arguments must be a JSON object")
	}
	return json.RawMessage(b), nil
}

// setList sets a comma-separated query array, skipping empty values.
func setList(q url.Values, key string, values []string) {
	var keep []string
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			keep = append(keep, v)
		}
	}
	if len(keep) > 0 {
		q.Set(key, strings.Join(keep, ","))
	}
}
