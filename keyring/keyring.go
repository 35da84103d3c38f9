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

// IsPrimary reports whether a token was sealed with the primary key, so
// rotation can skip what is already current.
func (r *Keyring) IsPrimary(token string) bool {
	return fernet.VerifyAndDecrypt([]byte(token), 0, r.keys[:1]) != nil
}

// Primary returns the encoded primary key, for deriving other secrets.
func (r *Keyring) Primary() []byte {
	k := *r.keys[0]
	return k[:]
}
