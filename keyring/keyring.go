package keyring

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fernet/fernet-go"
)

// ErrOpen is returned when no configured key opens a token.
var ErrOpen = errors.New("keyring: token cannot be decrypted with any configured key")

// Keyring holds Fernet keys, newest first.
type Keyring struct {
	keys []*fernet.Key
}

// Parse reads comma-separated base64 Fernet keys (as DB_ENCRYPTION_KEY holds).
// The error names the position of a bad key, never the key itself.
func Parse(s string) (*Keyring, error) {
	var keys []*fernet.Key
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := fernet.DecodeKey(part)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d of DB_ENCRYPTION_KEY is not a base64 32-byte Fernet key", i+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("keyring: DB_ENCRYPTION_KEY holds no key")
	}
	return &Keyring{keys: keys}, nil
}

// Generate returns a new random key, encoded as Parse expects.
func Generate() (string, error) {
	var k fernet.Key
	if err := k.Generate(); err != nil {
		return "", fmt.Errorf("keyring: generate: %w", err)
	}
	return k.Encode(), nil
}

// Seal encrypts with the first (primary) key.
func (r *Keyring) Seal(plain []byte) (string, error) {
	tok, err := fernet.EncryptAndSign(plain, r.keys[0])
	if err != nil {
		return "", fmt.Errorf("keyring: seal: %w", err)
	}
	return string(tok), nil
}

// Open decrypts with any key. Tokens never expire: a stored credential stays
// valid until it is replaced.
func (r *Keyring) Open(token string) ([]byte, error) {
	msg := fernet.VerifyAndDecrypt([]byte(token), 0, r.keys)
	if msg == nil {
		return nil, ErrOpen
	}
	return msg, nil
}

// Primary returns the encoded primary key, for deriving other secrets.
func (r *Keyring) Primary() []byte {
	k := *r.keys[0]
	return k[:]
}

// boundMagic starts the plaintext of a token sealed by SealBound. A NUL byte
// cannot start a legacy credential (a password or a URI typed into a form),
// so the two formats never collide.
const boundMagic = "\x00mcp-bound-v1\x00"

// ErrBinding is returned when a token opens but was sealed for another
// record: a token copied from one record to another does not decrypt there.
var ErrBinding = errors.New("keyring: token was sealed for another record")

// SealBound encrypts plain together with binding (for a stored credential,
// the record's user, id and field), so that OpenBound gives the secret back
// only for the same binding.
func (r *Keyring) SealBound(binding string, plain []byte) (string, error) {
	msg := make([]byte, 0, len(boundMagic)+len(binding)+1+len(plain))
	msg = append(msg, boundMagic...)
	msg = append(msg, binding...)
	msg = append(msg, 0)
	msg = append(msg, plain...)
	return r.Seal(msg)
}

// OpenBound decrypts a token sealed by SealBound and checks its binding.
// A token sealed before bindings existed (plain Seal) still opens, so that
// existing data keeps working; rotate-keys re-seals it bound (see Bound).
func (r *Keyring) OpenBound(binding, token string) ([]byte, error) {
	msg, err := r.Open(token)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(string(msg), boundMagic)
	if !ok {
		return msg, nil // legacy, unbound
	}
	got, secret, ok := strings.Cut(rest, "\x00")
	if !ok || got != binding {
		return nil, ErrBinding
	}
	return []byte(secret), nil
}

// IsCurrent reports whether a token is sealed with the primary key and bound
// to binding, so that rotation can skip it.
func (r *Keyring) IsCurrent(binding, token string) bool {
	msg := fernet.VerifyAndDecrypt([]byte(token), 0, r.keys[:1])
	if msg == nil {
		return false
	}
	rest, ok := strings.CutPrefix(string(msg), boundMagic)
	return ok && strings.HasPrefix(rest, binding+"\x00")
}
