package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// rotate-keys re-encrypts every stored credential with the new first key,
// is idempotent, and reports records no configured key can open.
func TestRotateKeys(t *testing.T) {
	t.Parallel()
	// Its own instance: rotation rewrites every record of the store.
	b, err := servicetest.Start(t, service.ModeServe, nil, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	oldKey := b.In.Config.EncryptionKeys
	newKey, _ := keyring.Generate()
	user := servicetest.User(t)
	pgID := connectPG(t, b, user, "rotate-pw-1")
	mongoID := b.Do(t, "POST", "/api/databases/connect", map[string]any{"user_id": user, "db_type": "mongodb",
		"name": "Mongo", "connection_string": "mongodb://app:rotate-pw-2@127.0.0.1:27017/app"}).Expect(t, 200).Str("db_id")
	// A record sealed with a key nobody has any more.
	lost, _ := keyring.Generate()
	lostRing, _ := keyring.Parse(lost)
	orphanTok, _ := lostRing.Seal([]byte("gone"))
	orphanID := "db_orphan" + strings.ToLower(strings.ReplaceAll(user, "-", ""))[:10]
	if err := b.In.Store.InsertDatabase(context.Background(), &storage.Database{ID: orphanID, UserID: user,
		DBType: "postgres", Name: "orphan", Host: "127.0.0.1", Port: 5432, Password: orphanTok, Status: "connected"}); err != nil {
		t.Fatal(err)
	}

	run := func(keys string) (string, int) {
		cmd := exec.Command(binary(t), "rotate-keys")
		cmd.Env = []string{"MONGODB_URI=" + b.In.StorageURI(), "DB_ENCRYPTION_KEY=" + keys, "AGENT_API_KEY=x"}
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := run(newKey + "," + oldKey)
	if code != 1 || !strings.Contains(out, "failed 1") || !strings.Contains(out, orphanID) {
		t.Fatalf("first run (exit %d):\n%s", code, out)
	}
	newRing, _ := keyring.Parse(newKey)
	for id, want := range map[string]string{pgID: "rotate-pw-1", mongoID: "mongodb://app:rotate-pw-2@127.0.0.1:27017/app"} {
		var raw bson.M
		if err := b.Collection(t, storage.CollDatabases).FindOne(context.Background(), bson.M{"_id": id}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		field := storage.FieldPassword
		tok, _ := raw[field].(string)
		if tok == "" {
			field = storage.FieldConnectionString
			tok, _ = raw[field].(string)
		}
		binding := storage.CredentialBinding(&storage.Database{ID: id, UserID: user}, field)
		if !newRing.IsCurrent(binding, tok) {
			t.Fatalf("%s not re-encrypted with the new key, bound to its record", id)
		}
		if got, err := newRing.OpenBound(binding, tok); err != nil || string(got) != want {
			t.Fatalf("%s decrypts to %q, %v", id, got, err)
		}
	}
	// Idempotent: a second run changes nothing it already did.
	_ = b.In.Store.DeleteDatabase(context.Background(), user, orphanID)
	out, code = run(newKey + "," + oldKey)
	if code != 0 || !strings.Contains(out, "re-encrypted 0") {
		t.Fatalf("second run (exit %d):\n%s", code, out)
	}
}
