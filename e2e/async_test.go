package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// asyncNATS is a client connection of its own to the instance's NATS, as an
// async caller would have.
func asyncNATS(t *testing.T, b *servicetest.Bundle) *nats.Conn {
	t.Helper()
	nc, err := b.In.ConnectNATS(nats.Name("e2e-async-caller"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// userResults subscribes to every result subject of a user, before anything
// is submitted.
func userResults(t *testing.T, nc *nats.Conn, user string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(messages.ResultSubjectPrefix + messages.UserToken(user) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// submitAsync posts an async execute and checks the 202.
func submitAsync(t *testing.T, b *servicetest.Bundle, user, action string, params map[string]any) string {
	t.Helper()
	r := b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": action,
		"params": params, "async": true}).Expect(t, http.StatusAccepted)
	jobID := r.Str("job_id")
	if _, err := uuid.Parse(jobID); err != nil || r.Str("status") != "queued" ||
		r.Str("result_subject") != messages.ResultSubject(user, jobID) {
		t.Fatalf("async submit: %s", r.Body)
	}
	return jobID
}

// jobPath is GET /api/jobs/{id}?user_id=.
func jobPath(jobID, user string) string {
	return "/api/jobs/" + jobID + "?user_id=" + url.QueryEscape(user)
}

// waitJob polls GET /api/jobs/{id} until the job is terminal.
func waitJob(t *testing.T, b *servicetest.Bundle, jobID, user string, within time.Duration) *servicetest.Response {
	t.Helper()
	deadline := time.Now().Add(within)
	seen := map[string]bool{}
	for {
		r := b.Do(t, "GET", jobPath(jobID, user), nil).Expect(t, http.StatusOK)
		st := r.Str("status")
		seen[st] = true
		switch st {
		case "queued", "running":
		case "succeeded", "failed":
			return r
		default:
			t.Fatalf("job status %q: %s", st, r.Body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %s (seen %v)", jobID, st, within, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkTimes checks created_at and finished_at of a terminal job.
func checkTimes(t *testing.T, r *servicetest.Response) (created, finished time.Time) {
	t.Helper()
	created, err1 := time.Parse(time.RFC3339Nano, r.Str("created_at"))
	finished, err2 := time.Parse(time.RFC3339Nano, r.Str("finished_at"))
	if err1 != nil || err2 != nil || finished.Before(created) || time.Since(created) > 5*time.Minute {
		t.Fatalf("job times: %s", r.Body)
	}
	return created, finished
}

func TestAsyncResultSubject(t *testing.T) {
	t.Parallel()
	pgAdmin(t)
	b := shared
	user, other := servicetest.User(t), servicetest.User(t)
	db := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, user, "pw")).Expect(t, http.StatusOK).Str("db_id")
	nc := asyncNATS(t, b)
	sub := userResults(t, nc, user)

	// Subscribe, submit, receive.
	jobID := submitAsync(t, b, user, "DB_QUERY_"+db, map[string]any{"query": "SELECT 1 AS one, 'async' AS how"})
	m, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no result on %s: %v", messages.ResultSubject(user, jobID), err)
	}
	if m.Subject != messages.ResultSubject(user, jobID) || m.Header.Get(messages.HeaderJobID) != jobID ||
		m.Header.Get(messages.HeaderOutcome) != messages.OutcomeOK {
		t.Fatalf("result message %s %v", m.Subject, m.Header)
	}
	var body struct {
		Result   []map[string]any `json:"result"`
		RowCount int              `json:"row_count"`
	}
	if err := json.Unmarshal(m.Data, &body); err != nil || body.RowCount != 1 || fmt.Sprint(body.Result) != "[map[how:async one:1]]" {
		t.Fatalf("result body: %s", m.Data)
	}

	// The status says the same, and keeps the result.
	r := waitJob(t, b, jobID, user, 30*time.Second)
	if r.Str("status") != "succeeded" || r.Str("job_id") != jobID {
		t.Fatalf("job: %s", r.Body)
	}
	res, _ := r.JSON["result"].(map[string]any)
	if res["success"] != true || fmt.Sprint(res["result"]) != "[map[how:async one:1]]" {
		t.Fatalf("job result: %s", r.Body)
	}
	checkTimes(t, r)

	// Another user's job, an unknown one and a malformed id are all 404.
	for _, p := range []string{jobPath(jobID, other), jobPath(uuid.NewString(), user), jobPath("not-a-job", user),
		jobPath(jobID, user+" "), jobPath(jobID+".published", user)} {
		if e := b.Do(t, "GET", p, nil).Expect(t, http.StatusNotFound); e.Str("code") != "job_not_found" {
			t.Fatalf("GET %s: %s", p, e.Body)
		}
	}
	b.Do(t, "GET", "/api/jobs/"+jobID, nil).Expect(t, http.StatusBadRequest)

	// A failing job: the error is published and kept.
	failID := submitAsync(t, b, user, "DB_QUERY_"+db, map[string]any{"query": "SELEC 1"})
	m, err = sub.NextMsg(30 * time.Second)
	if err != nil || m.Header.Get(messages.HeaderJobID) != failID || m.Header.Get(messages.HeaderOutcome) != messages.OutcomeError ||
		m.Header.Get(messages.HeaderErrorCode) != "query_failed" || m.Header.Get("Mcp-Http-Status") != "" {
		t.Fatalf("failure message (a code, no HTTP status on the bus): %v %v", err, m)
	}
	eb := messages.DecodeReply(m).Err
	if eb == nil || eb.Message == "" || eb.Code != "query_failed" {
		t.Fatalf("failure body: %s", m.Data)
	}
	f := waitJob(t, b, failID, user, 30*time.Second)
	if f.Str("status") != "failed" || f.Str("error") != eb.Message || f.Str("code") != eb.Code || f.JSON["result"] != nil {
		t.Fatalf("failed job: %s (published %s)", f.Body, m.Data)
	}
	checkTimes(t, f)

	// Each job was published once.
	if extra, err := sub.NextMsg(time.Second); err == nil {
		t.Fatalf("a result was published twice: %s %v", extra.Subject, extra.Header)
	}
}

// A synchronous call that times out answers 504 with the job id; the job
// still finishes and its result is kept.
func TestAsyncSyncTimeout(t *testing.T) {
	t.Parallel()
	pgAdmin(t)
	b, err := servicetest.Start(t, service.ModeServe, servicetest.Env{"MCP_JOB_TIMEOUT": "1s"}, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	user := servicetest.User(t)
	db := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, user, "pw")).Expect(t, http.StatusOK).Str("db_id")
	sub := userResults(t, asyncNATS(t, b), user)

	r := b.Do(t, "POST", "/api/tools/execute", map[string]any{"user_id": user, "action": "DB_QUERY_" + db,
		"params": map[string]any{"query": "SELECT pg_sleep(3), 42 AS answer"}}).Expect(t, http.StatusGatewayTimeout)
	jobID := r.Str("job_id")
	// A read (the fast class) says it may be lost and is safe to repeat.
	if _, err := uuid.Parse(jobID); err != nil || r.Str("code") != "worker_timeout" || r.JSON["success"] != false ||
		!strings.Contains(r.Str("error"), jobID) || !strings.Contains(r.Str("error"), "safe to run again") {
		t.Fatalf("504: %s", r.Body)
	}
	if st := b.Do(t, "GET", jobPath(jobID, user), nil).Expect(t, http.StatusOK).Str("status"); st != "queued" && st != "running" {
		t.Fatalf("status right after the 504: %q", st)
	}
	j := waitJob(t, b, jobID, user, 30*time.Second)
	res, _ := j.JSON["result"].(map[string]any)
	if j.Str("status") != "succeeded" || !strings.Contains(fmt.Sprint(res["result"]), "answer:42") {
		t.Fatalf("timed-out job: %s", j.Body)
	}
	checkTimes(t, j)
	// Its result subject got it too.
	if m, err := sub.NextMsg(10 * time.Second); err != nil || m.Header.Get(messages.HeaderJobID) != jobID ||
		!strings.Contains(string(m.Data), `"answer":42`) {
		t.Fatalf("result subject after a 504: %v %v", err, m)
	}
}

// validSubject is what NATS accepts as a publish subject: non-empty tokens,
// no wildcards, no whitespace or control characters.
func validSubject(s string) bool {
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, "*>") {
			return false
		}
		for _, r := range tok {
			if unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII {
				return false
			}
		}
	}
	return true
}

// User ids with '.', '*', '>', spaces or unicode route to distinct, valid
// subjects; a subscriber on one user's results never sees another's.
func TestAsyncSpecialUserIDs(t *testing.T) {
	t.Parallel()
	pgAdmin(t)
	b := shared
	run := strings.ReplaceAll(servicetest.User(t), ".", "")
	users := []string{"a.b", "a", "b", "a*", "a>", "a.*.>", "*", ">", "a b", " a", "ünïcødé 用户", "a.b.c", "a\tb"}
	for i := range users {
		users[i] = users[i] + "|" + run
	}
	users = append(users, "a.*.>", "*") // also bare, as a caller might use them
	subjects, tokens := map[string]string{}, map[string]string{}
	for _, u := range users {
		subj := messages.ResultSubject(u, uuid.NewString())
		tok := messages.UserToken(u)
		if !validSubject(subj) || !validSubject(tok) || strings.Contains(tok, ".") {
			t.Fatalf("user %q: invalid subject %q", u, subj)
		}
		if prev, dup := tokens[tok]; dup {
			t.Fatalf("users %q and %q share the subject token %s", prev, u, tok)
		}
		tokens[tok] = u
		subjects[u] = subj
	}

	nc := asyncNATS(t, b)
	subs := map[string]*nats.Subscription{}
	for _, u := range users {
		subs[u] = userResults(t, nc, u)
	}
	all, err := nc.SubscribeSync(messages.ResultSubjectPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	jobs := map[string]string{} // job id → user
	for i, u := range users {
		db := b.Do(t, "POST", "/api/databases/connect", pgConnectBody(t, u, "pw")).Expect(t, http.StatusOK).Str("db_id")
		id := submitAsync(t, b, u, "DB_QUERY_"+db, map[string]any{"query": fmt.Sprintf("SELECT %d AS n", i)})
		jobs[id] = u
	}
	for i, u := range users {
		m, err := subs[u].NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("user %q got no result: %v", u, err)
		}
		id := m.Header.Get(messages.HeaderJobID)
		if jobs[id] != u || m.Subject != messages.ResultSubject(u, id) || !strings.Contains(string(m.Data), fmt.Sprintf(`"n":%d}`, i)) {
			t.Fatalf("user %q received %s on %s: %s", u, id, m.Subject, m.Data)
		}
		// Its status is its own.
		if r := waitJob(t, b, id, u, 30*time.Second); r.Str("status") != "succeeded" {
			t.Fatalf("user %q job: %s", u, r.Body)
		}
		for _, v := range users {
			if v != u {
				b.Do(t, "GET", jobPath(id, v), nil).Expect(t, http.StatusNotFound)
			}
		}
	}
	// Nothing else reached any user's subscription.
	time.Sleep(500 * time.Millisecond)
	for _, u := range users {
		if extra, err := subs[u].NextMsg(10 * time.Millisecond); err == nil {
			t.Fatalf("user %q received a second result: %s %v", u, extra.Subject, extra.Header)
		}
	}
	// Every job was published exactly once (other tests' results may pass by).
	count := map[string]int{}
	for {
		m, err := all.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		if _, ours := jobs[m.Header.Get(messages.HeaderJobID)]; ours {
			count[m.Header.Get(messages.HeaderJobID)]++
		}
	}
	for id, u := range jobs {
		if count[id] != 1 {
			t.Fatalf("job %s of %q published %d times", id, u, count[id])
		}
	}
}
