package integrations

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func testSigner(t *testing.T, key string) *Signer {
	t.Helper()
	s, err := NewSigner([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	s := testSigner(t, strings.Repeat("k", 32))
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	in := State{UserID: "user_123", Provider: "gmail", RedirectURL: "https://app.openanalyst.com/connectors?callback=true",
		Nonce: "n0nce", IntegrationID: "int_abc", Expires: now.Add(15 * time.Minute)}
	tok, err := s.Sign(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(tok, "+/= ") {
		t.Fatalf("token is not URL-safe: %q", tok)
	}
	got, err := s.Verify(tok, now.Add(14*time.Minute))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if *got != in {
		t.Fatalf("got %+v, want %+v", *got, in)
	}
}

func TestStateRefusals(t *testing.T) {
	t.Parallel()
	s := testSigner(t, strings.Repeat("k", 32))
	other := testSigner(t, strings.Repeat("o", 32))
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	st := State{UserID: "alice", Provider: "gmail", RedirectURL: "https://app.openanalyst.com/", Nonce: "n",
		IntegrationID: "int_1", Expires: now.Add(time.Minute)}
	tok, _ := s.Sign(st)
	payload, sig, _ := strings.Cut(tok, ".")

	// A payload naming another user, under the original signature.
	forged := st
	forged.UserID = "mallory"
	ftok, _ := s.Sign(forged)
	fpayload, _, _ := strings.Cut(ftok, ".")

	raw, _ := base64.RawURLEncoding.DecodeString(sig)
	raw[0] ^= 1
	flipped := payload + "." + base64.RawURLEncoding.EncodeToString(raw)
	otherTok, _ := other.Sign(st)

	for name, bad := range map[string]string{
		"empty":            "",
		"no signature":     payload,
		"swapped payload":  fpayload + "." + sig,
		"flipped bit":      flipped,
		"other key":        otherTok,
		"extra part":       tok + ".x",
		"not base64":       "!!!." + sig,
		"garbage":          "hello",
		"too long":         strings.Repeat("a", maxStateLen+1),
		"truncated sig":    payload + "." + sig[:10],
		"signed non-state": signRaw(s, []byte(`{"u":"alice"}`)),
	} {
		if _, err := s.Verify(bad, now); !errors.Is(err, ErrStateInvalid) {
			t.Errorf("%s: err = %v, want ErrStateInvalid", name, err)
		}
	}

	got, err := s.Verify(tok, now.Add(time.Minute))
	if !errors.Is(err, ErrStateExpired) || got == nil || got.UserID != "alice" {
		t.Fatalf("expired: %+v, %v; want the state with ErrStateExpired", got, err)
	}
}

func signRaw(s *Signer, payload []byte) string {
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

func TestStateKey(t *testing.T) {
	t.Parallel()
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
	a, b := DeriveStateKey([]byte("primary-1")), DeriveStateKey([]byte("primary-2"))
	if len(a) != 32 || bytes.Equal(a, b) || bytes.Equal(a, DeriveStateKey([]byte("primary-1"))) == false {
		t.Fatalf("derived keys: %x %x", a, b)
	}
	if bytes.Contains(a, []byte("primary-1")) {
		t.Fatal("derived key contains its secret")
	}
}
