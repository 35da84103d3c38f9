package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

// Every job JetStream acknowledged is still delivered after the embedded NATS
// process is killed (SIGKILL, no shutdown) right after the acks and
// restarted on the same data.
func TestAcknowledgedJobsSurviveNATSKill(t *testing.T) {
	t.Parallel()
	dir, port := t.TempDir(), freePort(t)
	env := map[string]string{"MCP_DATA_DIR": dir, "MCP_EMBEDDED_NATS_PORT": fmt.Sprint(port)}
	p := startProc(t, env, "nats")
	p.waitLog(t, "embedded NATS on", 15*time.Second)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := queue.Setup(ctx, js, queue.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	const n = 300
	acked := map[string]bool{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("job-%04d", i)
		job, _ := messages.NewJob(messages.KindExecute, id, "u", messages.ExecutePayload{Action: "DB_QUERY_db_x"})
		m := nats.NewMsg(messages.KindExecute.Subject())
		m.Data, _ = job.Encode()
		if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(id)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		acked[id] = true
	}
	nc.Close()
	p.kill() // SIGKILL right after the last ack
	p2 := startProc(t, env, "nats")
	p2.waitLog(t, "embedded NATS on", 15*time.Second)
	nc, err = nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	cons, err := js.Consumer(ctx, messages.JobStream, messages.KindExecute.Durable())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < n {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for m := range batch.Messages() {
			k++
			j, err := messages.DecodeJob(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			got[j.JobID] = true
			_ = m.Ack()
		}
		if k == 0 {
			break
		}
	}
	for id := range acked {
		if !got[id] {
			t.Errorf("acknowledged job %s was lost", id)
		}
	}
	t.Logf("%d jobs acknowledged before the kill, %d delivered after the restart", len(acked), len(got))
}
