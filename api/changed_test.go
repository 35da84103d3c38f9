package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openanalyst/mcp-integration-service/api"
	_ "github.com/openanalyst/mcp-integration-service/connectors/postgres" // registers the driver the records use
	"github.com/openanalyst/mcp-integration-service/internal/testservices"
	"github.com/openanalyst/mcp-integration-service/storage"
)

// Editing or removing a database drops this process's caches of it before
// the answer goes out, so that a call sent after the answer never runs on
// the old record (the change message to the worker may still be on its
// way); a refused edit or removal drops nothing.
func TestDatabaseChangedBeforeTheAnswer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := testservices.Store(t, "api_changed")
	for _, id := range []string{"db_edit", "db_gone"} {
		if err := store.InsertDatabase(ctx, &storage.Database{ID: id, UserID: "alice", DBType: "postgres", Name: id,
			Host: "db.example.com", Port: 5432, Database: "d", Username: "u", UpdatedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	var changed []string
	srv := api.New(api.Deps{APIKey: "k", Store: store, DatabaseChanged: func(id string) { changed = append(changed, id) }})
	call := func(method, path, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("X-API-Key", "k")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 400 && rec.Code != http.StatusNotFound {
			t.Logf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		return rec.Code
	}

	if code := call(http.MethodPost, "/api/databases/disconnect", `{"user_id":"bob","db_id":"db_gone"}`); code != http.StatusNotFound {
		t.Fatalf("another user's disconnect: %d", code)
	}
	if code := call(http.MethodPatch, "/api/databases/db_edit", `{"user_id":"bob","name":"x"}`); code != http.StatusNotFound {
		t.Fatalf("another user's edit: %d", code)
	}
	if len(changed) != 0 {
		t.Fatalf("refused changes dropped caches of %v", changed)
	}
	if code := call(http.MethodPatch, "/api/databases/db_edit", `{"user_id":"alice","name":"renamed"}`); code != http.StatusOK {
		t.Fatalf("edit: %d", code)
	}
	if len(changed) != 1 || changed[0] != "db_edit" {
		t.Fatalf("after the edit's answer, caches dropped for %v, want [db_edit]", changed)
	}
	if code := call(http.MethodPost, "/api/databases/disconnect", `{"user_id":"alice","db_id":"db_gone"}`); code != http.StatusOK {
		t.Fatalf("disconnect: %d", code)
	}
	if len(changed) != 2 || changed[1] != "db_gone" {
		t.Fatalf("after the disconnect's answer, caches dropped for %v, want [db_edit db_gone]", changed)
	}
}
