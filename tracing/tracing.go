package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/openanalyst/mcp-integration-service/messages"
)

// ScopeName is the instrumentation scope of every span this service starts.
const ScopeName = "github.com/openanalyst/mcp-integration-service"

// propagator is used by Inject, Extract and Middleware whether or not Setup
// ran, so a traceparent always travels from the API to the workers.
var propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// Propagator returns the W3C trace-context and baggage propagator.
func Propagator() propagation.TextMapPropagator { return propagator }

// Setup installs the global tracer provider and propagator. With an empty
// endpoint the provider is a no-op: nothing is recorded or exported, but
// traceparent is still carried. Otherwise spans are batched to the OTLP/HTTP
// endpoint (a base URL like http://collector:4318; /v1/traces is appended
// unless the path already ends with it). Call shutdown before exit to flush.
func Setup(ctx context.Context, endpoint, serviceName string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagator)
	endpoint = strings.TrimSpace(endpoint)
	if endpoint == "" {
		otel.SetTracerProvider(noop.NewTracerProvider())
		return func(context.Context) error { return nil }, nil
	}
	opts, err := exporterOptions(endpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// resource.Default reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
	// serviceName applies when OTEL_SERVICE_NAME is unset.
	res := resource.Default()
	if os.Getenv("OTEL_SERVICE_NAME") == "" && serviceName != "" {
		if merged, err := resource.Merge(res, resource.NewSchemaless(attribute.String("service.name", serviceName))); err == nil {
			res = merged
		}
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// exporterOptions turns OTEL_EXPORTER_OTLP_ENDPOINT into exporter options,
// following the specification: the variable is a base URL and the signal
// path /v1/traces is appended to it.
func exporterOptions(endpoint string) ([]otlptracehttp.Option, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("tracing: OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL like http://collector:4318")
	}
	path := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(path, "/v1/traces") {
		path += "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path)}
	if u.Scheme == "http" {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	return opts, nil
}

func tracer() trace.Tracer { return otel.Tracer(ScopeName) }

// Middleware starts a server span per request, continuing a traceparent the
// caller sent. The span is named "METHOD /route/{pattern}" once chi has
// routed the request; it works inside a chi router (Deps.Middleware) or
// wrapped around one (http.Server.Handler). It records the method, route, status and request id:
// never the query string, headers or body, which may carry keys or state.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer().Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method)))
		defer span.End()
		ww, ok := w.(middleware.WrapResponseWriter)
		if !ok {
			ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		}
		if chi.RouteContext(ctx) == nil {
			// Wrapping a whole chi router: give it the routing context up
			// front (chi then uses it instead of a pooled one), so the route
			// pattern can be read here once it has routed.
			ctx = context.WithValue(ctx, chi.RouteCtxKey, chi.NewRouteContext())
		}
		next.ServeHTTP(ww, r.WithContext(ctx))
		if !span.IsRecording() {
			return
		}
		if rc := chi.RouteContext(ctx); rc != nil {
			if p := rc.RoutePattern(); p != "" {
				span.SetName(r.Method + " " + p)
				span.SetAttributes(attribute.String("http.route", p))
			}
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if id := middleware.GetReqID(ctx); id != "" {
			span.SetAttributes(attribute.String("mcp.request_id", id))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

// HeaderCarrier adapts nats.Header to propagation.TextMapCarrier. NATS
// header names are case-sensitive; the W3C names are lower case.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set replaces the values of key. It does nothing on a nil header.
func (c HeaderCarrier) Set(key, value string) {
	if c != nil {
		nats.Header(c).Set(key, value)
	}
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's trace context (traceparent, tracestate, baggage) into
// h. With no valid span in ctx it writes nothing. h must be non-nil
// (nats.NewMsg makes one).
func Inject(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx carrying the remote trace context found in h, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return propagator.Extract(ctx, HeaderCarrier(h))
}

// StartJobSpan starts a worker's consumer span for one job, a child of the
// trace context in ctx (see Extract). End it when the job is done.
func StartJobSpan(ctx context.Context, kind messages.Kind, jobID string) (context.Context, trace.Span) {
	return tracer().Start(ctx, "process "+kind.Subject(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", kind.Subject()),
			attribute.String("messaging.message.id", jobID),
			attribute.String("mcp.job.kind", string(kind)),
		))
}
