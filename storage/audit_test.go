package storage_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/openanalyst/mcp-integration-service/storage"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A batch of entries is one document, whatever its size, so that neither
// writing nor pruning the log costs one document per call.
func TestAuditBatchIsOneDocument(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	a, err := m.NewAuditor(ctx, storage.Retention{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		a.Record(storage.AuditEntry{UserID: fmt.Sprintf("u%d", i%3), Action: "tool.execute", Target: "t", Outcome: "ok"})
	}
	a.Close()
	coll := m.RawDB().Collection(storage.CollAudit)
	docs, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil || docs != 1 {
		t.Fatalf("200 entries recorded together make %d documents (%v), want 1", docs, err)
	}
	for _, u := range []string{"u0", "u1", "u2"} {
		got, err := m.AuditLog(ctx, u, 1000)
		want := 67
		if u == "u2" {
			want = 66
		}
		if err != nil || len(got) != want {
			t.Fatalf("%s: %d entries (%v), want %d", u, len(got), err, want)
		}
		for _, e := range got {
			if e.UserID != u {
				t.Fatalf("%s reads %s's entry", u, e.UserID)
			}
		}
	}
}

// Two API nodes write batches that overlap in time: a user's latest
// entries come back newest first across them, cut at the limit.
func TestAuditLogMergesOverlappingBatches(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Millisecond)
	var nodes [2]*storage.Auditor
	for i := range nodes {
		a, err := m.NewAuditor(ctx, storage.Retention{}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = a
	}
	// Node 0 holds the even seconds, node 1 the odd ones.
	for i := range 40 {
		nodes[i%2].Record(storage.AuditEntry{UserID: "u", Action: fmt.Sprint(i), At: base.Add(time.Duration(i) * time.Second)})
	}
	nodes[0].Close()
	nodes[1].Close()
	got, err := m.AuditLog(ctx, "u", 7)
	if err != nil || len(got) != 7 {
		t.Fatalf("%d entries, %v", len(got), err)
	}
	for i, e := range got {
		if want := fmt.Sprint(39 - i); e.Action != want {
			t.Fatalf("entry %d is %s, want %s", i, e.Action, want)
		}
	}
}

// Entries written one per document by an earlier version are read with
// the batches and pruned by the same retention.
func TestAuditOlderLayoutIsReadAndPruned(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	coll := m.RawDB().Collection(storage.CollAudit)
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Millisecond)
	for i := range 5 {
		if _, err := coll.InsertOne(ctx, storage.AuditEntry{UserID: "u", Action: fmt.Sprint("old", i), At: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := coll.InsertOne(ctx, storage.AuditEntry{UserID: "u", Action: "expired", At: base.Add(-48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	a, err := m.NewAuditor(ctx, storage.Retention{MaxEntries: 8, MaxAge: 24 * time.Hour, Every: time.Hour}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		a.Record(storage.AuditEntry{UserID: "u", Action: fmt.Sprint("new", i), At: base.Add(time.Minute + time.Duration(i)*time.Second)})
	}
	a.Close()
	all, err := m.AuditLog(ctx, "u", 100)
	if err != nil || len(all) != 11 || all[0].Action != "new4" || all[5].Action != "old4" || all[10].Action != "expired" {
		t.Fatalf("before pruning: %+v %v", all, err)
	}
	n, err := a.Prune(ctx)
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v; want 3 (1 expired, 2 beyond 8 entries)", n, err)
	}
	kept, _ := m.AuditLog(ctx, "u", 100)
	if len(kept) != 8 || kept[0].Action != "new4" || kept[7].Action != "old2" {
		t.Fatalf("kept %+v", kept)
	}
}

// Pruning a large log reads sizes, not entries: 59 batches beyond the
// limit go in one call, and the count is exact.
func TestAuditPruneManyBatches(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	a, err := m.NewAuditor(ctx, storage.Retention{MaxEntries: 1000, Every: time.Hour}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 60 * 256 {
		a.Record(storage.AuditEntry{UserID: "u", Action: "x", At: base.Add(time.Duration(i) * time.Millisecond)})
		if i%512 == 511 {
			time.Sleep(50 * time.Millisecond) // let the writer drain its buffer
		}
	}
	a.Close()
	if d := a.Dropped(); d != 0 {
		t.Fatalf("%d entries dropped", d)
	}
	start := time.Now()
	n, err := a.Prune(ctx)
	if err != nil || n != 60*256-1000 {
		t.Fatalf("pruned %d, %v; want %d", n, err, 60*256-1000)
	}
	kept, _ := m.AuditLog(ctx, "u", 5000)
	if len(kept) != 1000 || !kept[0].At.Equal(base.Add(time.Duration(60*256-1)*time.Millisecond)) {
		t.Fatalf("kept %d", len(kept))
	}
	t.Logf("pruned %d entries in %s", n, time.Since(start))
}

// The writer needs no Close to write: a batch goes out when it fills or
// shortly after its first entry, and one that fills while another is being
// written goes out next. Close writes the rest in batches of at most 256,
// and a Record after it is ignored.
func TestAuditWriterFlushesOnItsOwn(t *testing.T) {
	t.Parallel()
	m := open(t)
	ctx := context.Background()
	a, err := m.NewAuditor(ctx, storage.Retention{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	coll := m.RawDB().Collection(storage.CollAudit)
	entries := func() int {
		got, err := m.AuditLog(ctx, "", 10000)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for entries() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d entries written without Close, want %d", entries(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for range 3 {
		a.Record(storage.AuditEntry{UserID: "u", Action: "tool.execute", Target: "t", Outcome: "ok"})
	}
	waitFor(3)
	for range 700 { // fills two batches and starts a third
		a.Record(storage.AuditEntry{UserID: "u", Action: "tool.execute", Target: "t", Outcome: "ok"})
	}
	waitFor(703)
	for range 300 {
		a.Record(storage.AuditEntry{UserID: "u", Action: "tool.execute", Target: "t", Outcome: "ok"})
	}
	a.Close()
	a.Record(storage.AuditEntry{UserID: "u", Action: "tool.execute", Target: "late", Outcome: "ok"})
	if n := entries(); n != 1003 {
		t.Fatalf("%d entries after Close, want 1003", n)
	}
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		N int64 `bson:"n"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if d.N < 1 || d.N > 256 {
			t.Fatalf("a document holds %d entries, want 1 to 256", d.N)
		}
	}
	if len(docs) < 5 {
		t.Fatalf("1003 entries in %d documents: batches larger than 256", len(docs))
	}
}
