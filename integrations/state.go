package integrations

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Errors of Verify.
var (
	// ErrStateInvalid: the token is garbled or its signature does not match.
	// Nothing in it can be trusted, not even its redirect URL.
	ErrStateInvalid = errors.New("integrations: invalid OAuth state")
	// ErrStateExpired: the signature is good but the token is too old. The
	// State is still returned, so the flow can be closed and the browser
	// sent back.
	ErrStateExpired = errors.New("integrations: OAuth state expired")
)

// maxStateLen bounds a token before any work is done on it.
const maxStateLen = 4096

// stateLabel separates this key's use from any other derived from the same
// secret.
const stateLabel = "openanalyst/mcp-integration-service/oauth-state/v1"

// State is what connect signs into the callback URL.
type State struct {
	UserID        string    `json:"u"`
	Provider      string    `json:"p"`
	RedirectURL   string    `json:"r"`
	Nonce         string    `json:"n"`
	IntegrationID string    `json:"i"`
	Expires       time.Time `json:"-"`
}

type stateWire struct {
	State
	Exp int64 `json:"e"`
}

// Signer signs and verifies OAuth state tokens with HMAC-SHA256. A token is
// base64url(JSON) "." base64url(MAC), the MAC covering a version label and
// the payload.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer for a secret key of at least 32 bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < 32 {
		return nil, errors.New("integrations: the OAuth state key must be at least 32 bytes")
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// DeriveStateKey derives the state key from another secret (the primary
// Fernet key), so that OAUTH_STATE_KEY is optional: HMAC-SHA256(secret,
// label). Every process with the same DB_ENCRYPTION_KEY derives the same
// key; rotating that key invalidates only the flows in progress.
func DeriveStateKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(stateLabel))
	return m.Sum(nil)
}

// Sign returns the token of st.
func (s *Signer) Sign(st State) (string, error) {
	payload, err := json.Marshal(stateWire{State: st, Exp: st.Expires.Unix()})
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p)), nil
}

func (s *Signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(stateLabel))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks a token's signature, then its expiry at now. It returns
// ErrStateInvalid for anything not signed by this key, and the State with
// ErrStateExpired for a good but old token.
func (s *Signer) Verify(token string, now time.Time) (*State, error) {
	if token == "" || len(token) > maxStateLen {
		return nil, ErrStateInvalid
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok || strings.Contains(sig, ".") {
		return nil, ErrStateInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return nil, ErrStateInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, ErrStateInvalid
	}
	var w stateWire
	if err := json.Unmarshal(payload, &w); err != nil || w.UserID == "" || w.Provider == "" ||
		w.RedirectURL == "" || w.Nonce == "" || w.IntegrationID == "" || w.Exp == 0 {
		return nil, ErrStateInvalid
	}
	st := w.State
	st.Expires = time.Unix(w.Exp, 0).UTC()
	if !now.Before(st.Expires) {
		return &st, ErrStateExpired
	}
	return &st, nil
}
