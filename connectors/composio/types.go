package composio

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Connected account statuses, as Composio spells them.
const (
	// StatusInitializing: the account is being set up.
	StatusInitializing = "INITIALIZING"
	// StatusInitiated: a link was created; the user has not consented yet.
	StatusInitiated = "INITIATED"
	// StatusActive: the user consented; tools can run on the account.
	StatusActive = "ACTIVE"
	// StatusFailed: the connection attempt failed (e.g. consent denied).
	StatusFailed = "FAILED"
	// StatusExpired: the credentials expired and could not be refreshed.
	StatusExpired = "EXPIRED"
	// StatusInactive: the account was disabled.
	StatusInactive = "INACTIVE"
	// StatusRevoked: the user or provider revoked access.
	StatusRevoked = "REVOKED"
)

// Toolkit is an app Composio integrates, such as gmail or slack.
type Toolkit struct {
	// Slug identifies the toolkit, e.g. "gmail".
	Slug string `json:"slug"`
	// Name is the display name, e.g. "Gmail".
	Name string `json:"name"`
	// Meta describes the toolkit.
	Meta ToolkitMeta `json:"meta"`
	// AuthSchemes lists the supported auth schemes, e.g. "OAUTH2".
	AuthSchemes []string `json:"auth_schemes,omitempty"`
	// ComposioManagedAuthSchemes lists the schemes Composio can run with its
	// own OAuth app.
	ComposioManagedAuthSchemes []string `json:"composio_managed_auth_schemes,omitempty"`
	// NoAuth is true when the toolkit's tools need no connected account.
	NoAuth bool `json:"no_auth"`
}

// ToolkitMeta is the descriptive part of a Toolkit.
type ToolkitMeta struct {
	// Description says what the app is.
	Description string `json:"description"`
	// Logo is the URL of the app's logo.
	Logo string `json:"logo"`
	// AppURL is the app's home page, when known.
	AppURL string `json:"app_url,omitempty"`
	// Categories groups the app, e.g. {ID: "productivity"}.
	Categories []Category `json:"categories,omitempty"`
	// ToolsCount is the number of tools the toolkit offers.
	ToolsCount int `json:"tools_count"`
	// TriggersCount is the number of triggers the toolkit offers.
	TriggersCount int `json:"triggers_count"`
}

// UnmarshalJSON accepts the counts as any JSON number (Composio's schema
// declares them as floats).
func (m *ToolkitMeta) UnmarshalJSON(b []byte) error {
	type plain ToolkitMeta
	var raw struct {
		plain
		ToolsCount    float64 `json:"tools_count"`
		TriggersCount float64 `json:"triggers_count"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = ToolkitMeta(raw.plain)
	m.ToolsCount = floatToInt(raw.ToolsCount)
	m.TriggersCount = floatToInt(raw.TriggersCount)
	return nil
}

// Category is a toolkit category.
type Category struct {
	// ID identifies the category, e.g. "productivity".
	ID string `json:"id"`
	// Name is the display name, e.g. "Productivity".
	Name string `json:"name"`
}

// UnmarshalJSON accepts both {"id","name"} objects and bare strings.
func (c *Category) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*c = Category{ID: s, Name: s}
		return nil
	}
	type plain Category
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*c = Category(p)
	return nil
}

// ToolkitRef names the toolkit a tool or account belongs to.
type ToolkitRef struct {
	// Slug identifies the toolkit, e.g. "gmail".
	Slug string `json:"slug"`
	// Name is the display name, when Composio sends it.
	Name string `json:"name,omitempty"`
	// Logo is the URL of the toolkit's logo, when Composio sends it.
	Logo string `json:"logo,omitempty"`
}

// AuthConfigRef names the auth config (the per-project OAuth app setup) an
// account was created with.
type AuthConfigRef struct {
	// ID identifies the auth config, e.g. "ac_1234".
	ID string `json:"id"`
	// IsComposioManaged is true when Composio's own OAuth app is used.
	IsComposioManaged bool `json:"is_composio_managed,omitempty"`
	// IsDisabled is true when the auth config was disabled.
	IsDisabled bool `json:"is_disabled,omitempty"`
}

// LinkRequest asks Composio for a hosted connection link.
type LinkRequest struct {
	// AuthConfigID is the auth config of the toolkit to connect. Required.
	AuthConfigID string `json:"auth_config_id"`
	// UserID is Composio's user (entity) id the account will belong to.
	// Required.
	UserID string `json:"user_id"`
	// CallbackURL is where Composio sends the browser after consent, with
	// status and connected_account_id added to its query.
	CallbackURL string `json:"callback_url,omitempty"`
	// Alias is an optional human-readable name, unique per user and toolkit.
	Alias string `json:"alias,omitempty"`
}

// Link is a hosted connection link: the user opens RedirectURL to consent.
type Link struct {
	// ConnectedAccountID is the account the link will activate.
	ConnectedAccountID string `json:"connected_account_id"`
	// LinkToken identifies the link.
	LinkToken string `json:"link_token"`
	// RedirectURL is the page the end user opens to connect.
	RedirectURL string `json:"redirect_url"`
	// ExpiresAt is when the link stops working (about 10 minutes), or zero
	// when Composio did not say.
	ExpiresAt time.Time `json:"expires_at"`
}

// UnmarshalJSON accepts expires_at as an RFC 3339 string or a Unix time.
func (l *Link) UnmarshalJSON(b []byte) error {
	type plain Link
	var raw struct {
		plain
		ExpiresAt json.RawMessage `json:"expires_at"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*l = Link(raw.plain)
	l.ExpiresAt = parseTime(raw.ExpiresAt)
	return nil
}

// ConnectedAccount is a user's connection to a toolkit.
type ConnectedAccount struct {
	// ID identifies the account, e.g. "ca_1234".
	ID string `json:"id"`
	// UserID is the Composio user (entity) id the account belongs to.
	UserID string `json:"user_id"`
	// Status is one of the Status constants.
	Status string `json:"status"`
	// StatusReason explains a FAILED, EXPIRED or INACTIVE status.
	StatusReason string `json:"status_reason,omitempty"`
	// IsDisabled is true when the account was disabled.
	IsDisabled bool `json:"is_disabled,omitempty"`
	// Toolkit is the toolkit the account connects.
	Toolkit ToolkitRef `json:"toolkit"`
	// AuthConfig is the auth config the account was created with.
	AuthConfig AuthConfigRef `json:"auth_config"`
	// Data is the connection data Composio exposes (tokens may be masked).
	Data map[string]any `json:"data,omitempty"`
	// State is the auth-scheme-specific connection state, when sent.
	State *AccountState `json:"state,omitempty"`
	// CreatedAt is when the account was created.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the account last changed.
	UpdatedAt time.Time `json:"updated_at"`
}

// AccountState is the connection state of a ConnectedAccount.
type AccountState struct {
	// AuthScheme is e.g. "OAUTH2" or "API_KEY".
	AuthScheme string `json:"authScheme"`
	// Val holds the scheme's fields.
	Val map[string]any `json:"val,omitempty"`
}

// UnmarshalJSON reads the account leniently: times may be RFC 3339 strings
// or Unix times, and the deprecated entity_id stands in for user_id.
func (a *ConnectedAccount) UnmarshalJSON(b []byte) error {
	type plain ConnectedAccount
	var raw struct {
		plain
		CreatedAt json.RawMessage `json:"created_at"`
		UpdatedAt json.RawMessage `json:"updated_at"`
		EntityID  string          `json:"entity_id"`
		Params    map[string]any  `json:"params"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*a = ConnectedAccount(raw.plain)
	a.CreatedAt = parseTime(raw.CreatedAt)
	a.UpdatedAt = parseTime(raw.UpdatedAt)
	if a.UserID == "" {
		a.UserID = raw.EntityID
	}
	if a.Data == nil && raw.Params != nil {
		a.Data = raw.Params
	}
	return nil
}

// IsActive reports whether tools can run on the account.
func (a *ConnectedAccount) IsActive() bool {
	return a != nil && a.Status == StatusActive && !a.IsDisabled
}

// emailKeys are the keys, in order of preference, under which providers put
// the account's email address.
var emailKeys = []string{
	"email", "user_email", "userEmail", "email_address", "emailAddress",
	"primary_email", "primaryEmail", "mail", "login_email", "userPrincipalName",
}

// emailContainers are nested objects that commonly hold an email key.
var emailContainers = []string{
	"profile", "user", "userinfo", "user_info", "userInfo", "account",
	"authed_user", "me", "owner", "extra_token_data", "val",
}

// Email returns the email address of the connected account when its data
// carries one (e.g. email, user_email, emailAddress, profile.email, or the
// email claim of an OpenID id_token), or "". The id_token is decoded, not
// verified: use the result for display and bookkeeping only.
func (a *ConnectedAccount) Email() string {
	if a == nil {
		return ""
	}
	if e := findEmail(a.Data, 0); e != "" {
		return e
	}
	if a.State != nil {
		return findEmail(a.State.Val, 0)
	}
	return ""
}

func findEmail(m map[string]any, depth int) string {
	if m == nil || depth > 3 {
		return ""
	}
	for _, k := range emailKeys {
		if s, ok := m[k].(string); ok && looksLikeEmail(s) {
			return strings.TrimSpace(s)
		}
	}
	for _, k := range emailContainers {
		if inner, ok := m[k].(map[string]any); ok {
			if e := findEmail(inner, depth+1); e != "" {
				return e
			}
		}
	}
	if tok, ok := m["id_token"].(string); ok {
		if e := idTokenEmail(tok); e != "" {
			return e
		}
	}
	return ""
}

// idTokenEmail reads the email claim of a JWT without verifying it.
func idTokenEmail(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(payload, &claims) != nil || !looksLikeEmail(claims.Email) {
		return ""
	}
	return claims.Email
}

func looksLikeEmail(s string) bool {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && len(s) <= 320 && !strings.ContainsAny(s, " \t\r\n<>,;:\"()[]\\")
}

// ListAccountsOptions filters ListConnectedAccounts. Empty fields do not
// filter.
type ListAccountsOptions struct {
	// UserIDs keeps accounts of these Composio users.
	UserIDs []string
	// ToolkitSlugs keeps accounts of these toolkits.
	ToolkitSlugs []string
	// Statuses keeps accounts in these statuses (Status constants).
	Statuses []string
	// AuthConfigIDs keeps accounts created with these auth configs.
	AuthConfigIDs []string
}

// Tool is one action of a toolkit, such as GMAIL_SEND_EMAIL.
type Tool struct {
	// Slug identifies the tool, e.g. "GMAIL_SEND_EMAIL".
	Slug string `json:"slug"`
	// Name is the display name.
	Name string `json:"name"`
	// Description says what the tool does; written for LLMs.
	Description string `json:"description"`
	// InputParameters is a JSON Schema object for the arguments.
	InputParameters json.RawMessage `json:"input_parameters,omitempty"`
	// OutputParameters is a JSON Schema object for the result data.
	OutputParameters json.RawMessage `json:"output_parameters,omitempty"`
	// Toolkit is the toolkit the tool belongs to.
	Toolkit ToolkitRef `json:"toolkit"`
	// Version is the tool's current version, to pin in ExecuteRequest.
	Version string `json:"version,omitempty"`
	// AvailableVersions lists the versions that can be executed.
	AvailableVersions []string `json:"available_versions,omitempty"`
	// NoAuth is true when the tool needs no connected account.
	NoAuth bool `json:"no_auth"`
	// IsDeprecated is true when Composio deprecated the tool.
	IsDeprecated bool `json:"is_deprecated"`
	// Tags label the tool, e.g. "important".
	Tags []string `json:"tags,omitempty"`
}

// RequiredArguments returns the names listed as required by the tool's
// input JSON Schema.
func (t *Tool) RequiredArguments() []string {
	var schema struct {
		Required []string `json:"required"`
	}
	if len(t.InputParameters) == 0 || json.Unmarshal(t.InputParameters, &schema) != nil {
		return nil
	}
	return schema.Required
}

// ExecuteRequest runs a tool on a connected account.
type ExecuteRequest struct {
	// UserID is the Composio user (entity) id the account belongs to.
	UserID string `json:"user_id,omitempty"`
	// ConnectedAccountID selects the account; when empty Composio picks the
	// user's account for the tool's toolkit.
	ConnectedAccountID string `json:"connected_account_id,omitempty"`
	// Arguments is a JSON object: a map[string]any, a json.RawMessage or a
	// struct. Nil sends {}.
	Arguments any `json:"arguments"`
	// Version pins the tool version (see Tool.Version); empty lets Composio
	// choose.
	Version string `json:"version,omitempty"`
}

// ExecuteResult is the outcome of ExecuteTool. A tool that ran and failed
// (Successful false) is not a Go error: Error says why.
type ExecuteResult struct {
	// Data is the tool's result, a JSON value (usually an object).
	Data json.RawMessage `json:"data"`
	// Successful reports whether the tool succeeded.
	Successful bool `json:"successful"`
	// Error is the tool's error message when it failed.
	Error string `json:"error,omitempty"`
	// LogID identifies the execution in Composio's logs.
	LogID string `json:"log_id,omitempty"`
}

// UnmarshalJSON also accepts the misspelled success field of older answers
// (successful with a double l), and an error that is
// a string, null or an object.
func (r *ExecuteResult) UnmarshalJSON(b []byte) error {
	var raw struct {
		Data          json.RawMessage `json:"data"`
		Successful    *bool           `json:"successful"`
		LegacySuccess *bool           `json:"successfull"` //nolint:misspell // Composio's old field name
		Error         json.RawMessage `json:"error"`
		LogID         string          `json:"log_id"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = ExecuteResult{Data: raw.Data, LogID: raw.LogID}
	switch {
	case raw.Successful != nil:
		r.Successful = *raw.Successful
	case raw.LegacySuccess != nil:
		r.Successful = *raw.LegacySuccess
	}
	r.Error = messageString(raw.Error)
	if !r.Successful && r.Error == "" && raw.Successful == nil && raw.LegacySuccess == nil {
		r.Error = "Composio did not report whether the tool succeeded"
	}
	return nil
}

// parseTime reads a time that is an RFC 3339 string or a Unix time in
// seconds or milliseconds; anything else is the zero time.
func parseTime(raw json.RawMessage) time.Time {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		s = strings.TrimSpace(s)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC()
			}
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return unixTime(f)
		}
		return time.Time{}
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return unixTime(f)
	}
	return time.Time{}
}

func unixTime(f float64) time.Time {
	if f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}
	}
	if f > 1e12 { // milliseconds
		return time.UnixMilli(int64(f)).UTC()
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func floatToInt(f float64) int {
	if f <= 0 || math.IsNaN(f) {
		return 0
	}
	if f > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(f)
}
