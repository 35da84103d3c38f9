package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/openanalyst/mcp-integration-service/embedded"
	"github.com/openanalyst/mcp-integration-service/keyring"
	"github.com/openanalyst/mcp-integration-service/service"
	"github.com/openanalyst/mcp-integration-service/service/servicetest"
)

// roundRobin is a load balancer without affinity in front of the API nodes:
// each request of the MCP client goes to the next node, with the token.
type roundRobin struct {
	token  string
	nodes  []*url.URL
	stream chan int // the node that took the first event stream (subscriptions/listen or GET)

	mu   sync.Mutex
	n    int
	hits []lbHit // in order
}

// lbHit is one request the balancer passed on.
type lbHit struct {
	node      int
	method    string // HTTP
	mcpMethod string // the JSON-RPC method of a POST
	status    int    // 0: no answer
}

func newRoundRobin(t *testing.T, token string, bases ...string) *roundRobin {
	rr := &roundRobin{token: token, stream: make(chan int, 1)}
	for _, b := range bases {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		rr.nodes = append(rr.nodes, u)
	}
	return rr
}

func (rr *roundRobin) RoundTrip(r *http.Request) (*http.Response, error) {
	rr.mu.Lock()
	i := rr.n % len(rr.nodes)
	rr.n++
	rr.mu.Unlock()
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rr.nodes[i].Scheme, rr.nodes[i].Host, ""
	r.Header.Set("Authorization", "Bearer "+rr.token)
	h := lbHit{node: i, method: r.Method}
	if r.Body != nil {
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		var msg struct{ Method string }
		_ = json.Unmarshal(body, &msg)
		h.mcpMethod = msg.Method
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		h.status = resp.StatusCode
		if (h.mcpMethod == "subscriptions/listen" || r.Method == http.MethodGet) && resp.StatusCode == http.StatusOK {
			select {
			case rr.stream <- i:
			default:
			}
		}
	}
	rr.mu.Lock()
	rr.hits = append(rr.hits, h)
	rr.mu.Unlock()
	return resp, err
}

// served tells whether each node answered a POST of method with a 2xx.
func (rr *roundRobin) served(method string) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	seen := make([]bool, len(rr.nodes))
	for _, h := range rr.hits {
		if h.method == http.MethodPost && h.mcpMethod == method && h.status/100 == 2 {
			seen[h.node] = true
		}
	}
	return !slices.Contains(seen, false)
}

// log lists the requests, for a failure message.
func (rr *roundRobin) log() string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	var b strings.Builder
	for _, h := range rr.hits {
		fmt.Fprintf(&b, "node%d %s %s %d\n", h.node, h.method, h.mcpMethod, h.status)
	}
	return b.String()
}

// Two API nodes behind a round-robin balancer (no session affinity), with a
// worker, sharing one NATS and one FerretDB: an MCP client whose requests
// alternate between the nodes works for a whole session, with the stateless
// protocol (2026-07-28) and with the session-based one (2025-11-25), and a
// change made on one node reaches the client's list_changed stream on the
// other.
func TestMCPBehindRoundRobin(t *testing.T) {
	t.Parallel()
	pgAdmin(t)
	dir := t.TempDir()
	ns, err := embedded.StartNATS(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	ferret, err := embedded.StartFerret(context.Background(), filepath.Join(dir, "ferretdb"), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ferret.Close() })
	key, _ := keyring.Generate()
	env := servicetest.Env{"NATS_URL": ns.URL(), "MONGODB_URI": ferret.URI(), "MCP_ALLOW_PRIVATE_HOSTS": "true",
		"AGENT_API_KEY": "lb-key-" + fmt.Sprint(time.Now().UnixNano()), "DB_ENCRYPTION_KEY": key,
		"MCP_METRICS_ADDR": "127.0.0.1:0", "MCP_WORKERS": "4"}
	var nodes [2]*servicetest.Bundle
	for i := range nodes {
		if nodes[i], err = servicetest.Start(t, service.ModeAPI, env, service.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := servicetest.Start(t, service.ModeWorker, env, service.Options{}); err != nil {
		t.Fatal(err)
	}

	user := servicetest.User(t)
	db := connectPG(t, nodes[0], user, "unused")
	_, token := mcpMint(t, nodes[1], user, 0)

	for _, c := range []struct{ version, want string }{{"", "2026-07-28"}, {"2025-11-25", "2025-11-25"}} {
		t.Run("protocol"+c.want, func(t *testing.T) {
			rr := newRoundRobin(t, token, nodes[0].URL, nodes[1].URL)
			cs := lbConnect(t, rr, nodes[0].URL, c.version, nil)
			if got := cs.InitializeResult().ProtocolVersion; got != c.want {
				t.Fatalf("negotiated %s, want %s", got, c.want)
			}
			// Lists on every other round, so that both methods reach both nodes.
			for i := 1; i <= 4; i++ {
				if i%2 == 1 && mcpListTools(t, cs)["DB_QUERY_"+db] == nil {
					t.Fatalf("tools/list %d lacks DB_QUERY_%s\nrequests:\n%s", i, db, rr.log())
				}
				res, body := mcpCallTool(t, cs, "DB_QUERY_"+db, map[string]any{"query": fmt.Sprintf("SELECT %d AS n", i)})
				if res.IsError || fmt.Sprint(body["result"]) != fmt.Sprintf("[map[n:%d]]", i) {
					t.Fatalf("call %d: isError=%v %v\nrequests:\n%s", i, res.IsError, body, rr.log())
				}
			}
			for _, m := range []string{"tools/list", "tools/call"} {
				if !rr.served(m) {
					t.Fatalf("%s did not reach both nodes:\n%s", m, rr.log())
				}
			}
			if err := cs.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}

	t.Run("ListChanged", func(t *testing.T) {
		rr := newRoundRobin(t, token, nodes[0].URL, nodes[1].URL)
		changed := make(chan struct{}, 16)
		cs := lbConnect(t, rr, nodes[0].URL, "", &mcp.ClientOptions{
			ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} }})
		var listen int
		select {
		case listen = <-rr.stream:
		case <-time.After(15 * time.Second):
			t.Fatalf("the client never opened its subscriptions/listen stream\nrequests:\n%s", rr.log())
		}
		// A database connected through the other node.
		db2 := connectPG(t, nodes[1-listen], user, "unused")
		select {
		case <-changed:
		case <-time.After(20 * time.Second):
			t.Fatalf("no list_changed on node %d's stream after a change on node %d", listen, 1-listen)
		}
		if mcpListTools(t, cs)["DB_QUERY_"+db2] == nil {
			t.Fatal("the new database's tools are not listed after list_changed")
		}
	})
}

// lbConnect opens an MCP client session whose requests go through rr;
// version "" lets the client choose.
func lbConnect(t *testing.T, rr *roundRobin, base, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-lb", Version: "1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp",
		HTTPClient: &http.Client{Transport: rr}, MaxRetries: -1}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("MCP connect: %v\nrequests:\n%s", err, rr.log())
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// lbUp is closed once rr passed on an open event stream.
func lbUp(rr *roundRobin) <-chan struct{} {
	up := make(chan struct{})
	go func() { <-rr.stream; close(up) }()
	return up
}
