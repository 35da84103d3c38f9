package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/openanalyst/mcp-integration-service/messages"
	"github.com/openanalyst/mcp-integration-service/tracing"
)

// memoryProvider installs an SDK provider that records spans in memory and
// restores the previous global provider when the test ends.
func memoryProvider(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prev)
	})
	return exp
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, prefix string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if strings.HasPrefix(s.Name, prefix) {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span named %q*; have %q", prefix, names)
	return tracetest.SpanStub{}
}

// An API request's span travels in the job's NATS headers; the worker's span
// continues the same trace as its child.
func TestTraceFromAPIToWorker(t *testing.T) {
	exp := memoryProvider(t)

	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var hdr nats.Header
	r := chi.NewRouter()
	r.Use(tracing.Middleware)
	r.Post("/api/tools/execute", func(w http.ResponseWriter, r *http.Request) {
		m := nats.NewMsg(messages.KindExecute.Subject()) // what queue.Dispatcher builds
		tracing.Inject(r.Context(), m.Header)
		hdr = m.Header
		w.WriteHeader(http.StatusAccepted)
	})
	req := httptest.NewRequest(http.MethodPost, "/api/tools/execute?user_id=secret-state", nil)
	req.Header.Set("traceparent", caller)
	req.Header.Set("X-API-Key", "k-secret")
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	tp := hdr.Get("traceparent")
	if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || tp == caller {
		t.Fatalf("job traceparent %q: want the caller's trace with the API span as parent", tp)
	}

	// Worker side: a fresh context, only the headers.
	ctx := tracing.Extract(context.Background(), hdr)
	_, span := tracing.StartJobSpan(ctx, messages.KindExecute, "job-1")
	span.End()

	spans := exp.GetSpans()
	server := spanNamed(t, spans, "POST /api/tools/execute")
	job := spanNamed(t, spans, "process mcp.jobs.execute")
	if server.SpanKind != trace.SpanKindServer || job.SpanKind != trace.SpanKindConsumer {
		t.Fatalf("span kinds %v, %v", server.SpanKind, job.SpanKind)
	}
	if server.Parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !server.Parent.IsRemote() {
		t.Fatalf("server span does not continue the caller's trace: parent %v", server.Parent)
	}
	if job.SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Fatalf("trace ids differ: API %s, worker %s", server.SpanContext.TraceID(), job.SpanContext.TraceID())
	}
	if job.Parent.SpanID() != server.SpanContext.SpanID() || !job.Parent.IsRemote() {
		t.Fatalf("worker span's parent %s is not the API span %s", job.Parent.SpanID(), server.SpanContext.SpanID())
	}
	for _, s := range []tracetest.SpanStub{server, job} {
		for _, a := range s.Attributes {
			if v := a.Value.String(); strings.Contains(v, "secret") {
				t.Fatalf("span %q records %s=%q", s.Name, a.Key, v)
			}
		}
	}
	var route, status bool
	for _, a := range server.Attributes {
		route = route || (a.Key == "http.route" && a.Value.AsString() == "/api/tools/execute")
		status = status || (a.Key == "http.response.status_code" && a.Value.AsInt64() == http.StatusAccepted)
	}
	if !route || !status {
		t.Fatalf("server span attributes %v", server.Attributes)
	}
}

// Wrapped around a whole router, the span still gets the route pattern.
func TestMiddlewareAroundRouter(t *testing.T) {
	exp := memoryProvider(t)
	r := chi.NewRouter()
	r.Route("/api", func(r chi.Router) {
		r.Get("/jobs/{job_id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	})
	rec := httptest.NewRecorder()
	tracing.Middleware(r).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/jobs/123?user_id=u", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d", rec.Code)
	}
	s := spanNamed(t, exp.GetSpans(), "GET /api/jobs/{job_id}")
	if s.Parent.IsValid() {
		t.Fatalf("a request without traceparent has parent %v", s.Parent)
	}
}

// A request without traceparent starts a new trace that still reaches the worker.
func TestNewTraceReachesWorker(t *testing.T) {
	exp := memoryProvider(t)
	ctx, span := otel.Tracer("api").Start(context.Background(), "api")
	h := nats.Header{}
	tracing.Inject(ctx, h)
	span.End()
	wctx := tracing.Extract(context.Background(), h)
	_, job := tracing.StartJobSpan(wctx, messages.KindTest, "job-2")
	job.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].SpanContext.TraceID() != spans[0].SpanContext.TraceID() ||
		spans[1].Parent.SpanID() != spans[0].SpanContext.SpanID() {
		t.Fatalf("spans %+v", spans)
	}
}

// Without an endpoint nothing is recorded or exported, Setup does not fail,
// and traceparent is still carried through unchanged.
func TestSetupWithoutEndpoint(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	shutdown, err := tracing.Setup(context.Background(), "", "mcp-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.StartJobSpan(context.Background(), messages.KindExecute, "job-3")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Fatal("a span is recorded without an exporter")
	}
	span.End()

	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in := nats.Header{}
	in.Set("traceparent", caller)
	ctx, job := tracing.StartJobSpan(tracing.Extract(context.Background(), in), messages.KindExecute, "job-4")
	out := nats.Header{}
	tracing.Inject(ctx, out)
	job.End()
	if got := out.Get("traceparent"); got != caller {
		t.Fatalf("no-op provider: traceparent %q, want %q passed through", got, caller)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSetupRejectsBadEndpoint(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	if _, err := tracing.Setup(context.Background(), "collector:4318", "mcp-test"); err == nil {
		t.Fatal("an endpoint without scheme was accepted")
	}
	shutdown, err := tracing.Setup(context.Background(), "http://127.0.0.1:1", "mcp-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing to flush; do not wait on the unreachable collector
	_ = shutdown(ctx)
}

// With an endpoint, spans are exported over OTLP/HTTP to <endpoint>/v1/traces.
func TestSetupExportsToEndpoint(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	got := make(chan string, 4)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.Path
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	shutdown, err := tracing.Setup(context.Background(), collector.URL, "mcp-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.StartJobSpan(context.Background(), messages.KindExecute, "job-5")
	if !span.IsRecording() {
		t.Fatal("span not recorded with an endpoint set")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if req != "POST /v1/traces" {
			t.Fatalf("collector got %q", req)
		}
	default:
		t.Fatal("nothing exported on shutdown")
	}
}

func TestInjectIntoNilHeaderDoesNotPanic(t *testing.T) {
	memoryProvider(t)
	ctx, span := otel.Tracer("x").Start(context.Background(), "x")
	defer span.End()
	tracing.Inject(ctx, nil)
	if got := tracing.Extract(context.Background(), nil); trace.SpanContextFromContext(got).IsValid() {
		t.Fatal("extracted a span context from nothing")
	}
}
