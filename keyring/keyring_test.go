package keyring

import (
	"errors"
	"strings"
	"testing"
)

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, _ := Generate()
	newKey, _ := Generate()
	oldRing, err := Parse(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := oldRing.Seal([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, "s3cret") {
		t.Fatal("token holds plaintext")
	}
	both, err := Parse(newKey + ", " + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := both.Open(tok)
	if err != nil || string(got) != "s3cret" {
		t.Fatalf("open with old key in ring: %q %v", got, err)
	}
	if both.IsCurrent("b", tok) {
		t.Fatal("old token reported as current")
	}
	tok2, _ := both.SealBound("b", []byte("s3cret"))
	if !both.IsCurrent("b", tok2) {
		t.Fatal("new token not current")
	}
	newOnly, _ := Parse(newKey)
	if _, err := newOnly.Open(tok); err == nil {
		t.Fatal("a dropped key still opened a token")
	}
}

func TestParseErrorsHideKey(t *testing.T) {
	t.Parallel()
	good, _ := Generate()
	_, err := Parse(good + ",not-a-key-XYZ")
	if err == nil || strings.Contains(err.Error(), "not-a-key-XYZ") || !strings.Contains(err.Error(), "key 2") {
		t.Fatalf("want an error naming key 2 without its value, got %v", err)
	}
	if _, err := Parse(" , "); err == nil {
		t.Fatal("empty ring accepted")
	}
}

// A bound token opens only for its binding, a copied one is refused, and a
// legacy (unbound) token still opens so that existing data keeps working.
func TestBinding(t *testing.T) {
	t.Parallel()
	k, _ := Generate()
	r, _ := Parse(k)
	tok, err := r.SealBound("db/alice/db_1/password", []byte("s3cret\x00with nul"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.OpenBound("db/alice/db_1/password", tok); err != nil || string(got) != "s3cret\x00with nul" {
		t.Fatalf("own binding: %q %v", got, err)
	}
	for _, b := range []string{"db/alice/db_2/password", "db/mallory/db_1/password", "db/alice/db_1/connection_string", "", "db/alice/db_1/password\x00"} {
		if _, err := r.OpenBound(b, tok); !errors.Is(err, ErrBinding) {
			t.Errorf("binding %q: err = %v, want ErrBinding", b, err)
		}
	}
	if !r.IsCurrent("db/alice/db_1/password", tok) || r.IsCurrent("db/alice/db_2/password", tok) {
		t.Error("IsCurrent does not follow the binding")
	}
	legacy, _ := r.Seal([]byte("old"))
	if got, err := r.OpenBound("db/alice/db_1/password", legacy); err != nil || string(got) != "old" {
		t.Fatalf("legacy token: %q %v", got, err)
	}
	if r.IsCurrent("db/alice/db_1/password", legacy) {
		t.Error("a legacy token must be re-sealed by rotation")
	}
}
