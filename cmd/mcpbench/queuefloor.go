package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/queue"
)

// runQueueFloor measures the job queue alone, in one process as `serve`
// runs it: an in-process NATS server, the fast stream and consumer of
// queue.Setup, the API's dispatcher publishing a job and waiting for its
// reply, and a consumer that answers each job at once with the reply codec
// and acks it. No HTTP, no database: what every synchronous call pays for
// crossing the queue, whatever else it does.
func runQueueFloor() error {
	_, err := queueFloor()
	return err
}

// queueFloor prints the queue floor's table and returns the CPU µs per
// request at each concurrency.
func queueFloor() (map[int]float64, error) {
	cpuAt := map[int]float64{}
	dir, err := os.MkdirTemp("", "mcpqueue-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ns, err := embedded.StartNATS(dir, -1)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	connect := func() (*nats.Conn, jetstream.JetStream, error) {
		nc, err := nats.Connect("", nats.InProcessServer(ns.Server()))
		if err != nil {
			return nil, nil, err
		}
		js, err := jetstream.New(nc)
		return nc, js, err
	}
	apiNC, apiJS, err := connect()
	if err != nil {
		return nil, err
	}
	defer apiNC.Close()
	wNC, wJS, err := connect()
	if err != nil {
		return nil, err
	}
	defer wNC.Close()
	ctx := context.Background()
	if err := queue.Setup(ctx, apiJS, queue.DefaultSettings()); err != nil {
		return nil, err
	}
	cons, err := wJS.Consumer(ctx, messages.FastStream, messages.KindExecute.ConsumerOf(messages.Fast))
	if err != nil {
		return nil, err
	}
	body := []byte(`{"success":true,"result":[{"?column?":1}],"row_count":1,"truncated":false}`)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		h := m.Headers()
		r := messages.Reply{JobID: h.Get(messages.HeaderJobID), Body: body}
		_ = wNC.PublishMsg(r.Encode(h.Get(messages.HeaderReplyTo)))
		_ = m.Ack()
	}, jetstream.PullMaxMessages(128))
	if err != nil {
		return nil, err
	}
	defer cc.Stop()
	disp, err := queue.NewDispatcher(apiNC, apiJS, "bench", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		return nil, err
	}
	defer disp.Close()
	payload := messages.ExecutePayload{Action: "DB_QUERY_db_bench", Params: []byte(`{"query":"SELECT 1"}`)}
	fmt.Printf("queue floor: one process, in-process NATS, fast stream, dispatcher + a consumer that answers at once (no HTTP, no database), %d CPUs\n", numCPU())
	fmt.Printf("%4s | %9s %10s %10s %12s\n", "c", "req/s", "p50", "p99", "cpu µs/req")
	for _, c := range []int{1, 16, 64} {
		var n atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		measure := func(d time.Duration, keep bool) error {
			end := time.Now().Add(d)
			var failOnce sync.Once
			var failed error
			for range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var mine []time.Duration
					for time.Now().Before(end) {
						j, _ := messages.NewJob(messages.KindExecute, uuid.NewString(), "bench", payload)
						t0 := time.Now()
						rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						_, err := disp.Request(rctx, messages.Fast, j)
						cancel()
						if err != nil {
							failOnce.Do(func() { failed = err })
							return
						}
						mine = append(mine, time.Since(t0))
					}
					if keep {
						n.Add(int64(len(mine)))
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			return failed
		}
		if err := measure(*warm, false); err != nil {
			return nil, err
		}
		cpu0 := cpuSeconds(os.Getpid())
		start := time.Now()
		if err := measure(*dur, true); err != nil {
			return nil, err
		}
		el := time.Since(start)
		cpu := cpuSeconds(os.Getpid()) - cpu0
		sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
		q := func(p float64) string {
			return strconv.FormatFloat(float64(lat[int(float64(len(lat)-1)*p)])/1e6, 'f', 3, 64) + "ms"
		}
		cpuAt[c] = cpu * 1e6 / float64(n.Load())
		fmt.Printf("%4d | %9.0f %10s %10s %12.0f\n", c, float64(n.Load())/el.Seconds(), q(0.5), q(0.99), cpuAt[c])
	}
	return cpuAt, nil
}
