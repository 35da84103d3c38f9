package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openanalyst/mcp-integration-service/messages"
)

// Metrics is one process's registry.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	jobs        *prometheus.CounterVec
	jobLatency  *prometheus.HistogramVec
	redelivered *prometheus.CounterVec
}

// New registers every metric in a fresh registry, with Go and process
// collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_http_requests_total",
		Help: "HTTP requests by route, method and status."}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mcp_http_request_duration_seconds",
		Help: "HTTP request latency by route, method and status.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)},
		[]string{"route", "method", "status"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_jobs_total",
		Help: "Jobs finished by a worker, by kind and outcome."}, []string{"kind", "outcome"})
	m.jobLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mcp_job_duration_seconds",
		Help: "Time a worker spent on a job, by kind and outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)},
		[]string{"kind", "outcome"})
	m.redelivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcp_job_redeliveries_total",
		Help: "Jobs delivered again after a failure, a nak or a crashed worker."}, []string{"kind"})
	m.reg.MustRegister(m.requests, m.latency, m.jobs, m.jobLatency, m.redelivered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest records one HTTP request. route must be a route pattern
// (never a raw path); every label has a bounded set of values: the method is
// one of the standard ones or "OTHER", the status a valid code or "other".
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	method = Method(method)
	s := "other"
	if status >= 100 && status <= 599 {
		s = strconv.Itoa(status)
	}
	m.requests.WithLabelValues(route, method, s).Inc()
	m.latency.WithLabelValues(route, method, s).Observe(d.Seconds())
}

// Method normalises an HTTP method for a label or a log: a standard method
// as is, anything else (an invented or misspelled one) "OTHER".
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodHead, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// ObserveJob records one job a worker finished (or gave back for retry).
func (m *Metrics) ObserveJob(kind messages.Kind, outcome string, d time.Duration, attempt int) {
	m.jobs.WithLabelValues(string(kind), outcome).Inc()
	m.jobLatency.WithLabelValues(string(kind), outcome).Observe(d.Seconds())
	if attempt > 1 {
		m.redelivered.WithLabelValues(string(kind)).Inc()
	}
}

// GaugeFunc registers a gauge read at scrape time.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Pools registers pool gauges from a stats function: per database type,
// open Sources (one per saved database) and their open connections.
func (m *Metrics) Pools(stats func() map[string][2]int) {
	m.reg.MustRegister(&poolCollector{stats: stats,
		sources: prometheus.NewDesc("mcp_pool_sources", "Open connection pools (one per saved database) by connector.", []string{"connector"}, nil),
		conns:   prometheus.NewDesc("mcp_pool_connections", "Open connections to user databases by connector.", []string{"connector"}, nil)})
}

type poolCollector struct {
	stats          func() map[string][2]int
	sources, conns *prometheus.Desc
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.sources; ch <- c.conns }

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for kind, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.sources, prometheus.GaugeValue, float64(s[0]), kind)
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s[1]), kind)
	}
}

// JetStream registers stream and consumer backlog gauges, read at scrape
// time.
func (m *Metrics) JetStream(js jetstream.JetStream) {
	m.reg.MustRegister(&jsCollector{js: js,
		stream:  prometheus.NewDesc("mcp_stream_messages", "Messages in the job stream.", nil, nil),
		pending: prometheus.NewDesc("mcp_consumer_pending", "Jobs not yet delivered, by consumer.", []string{"consumer"}, nil),
		acks:    prometheus.NewDesc("mcp_consumer_ack_pending", "Jobs delivered and not yet acknowledged, by consumer.", []string{"consumer"}, nil),
		redel:   prometheus.NewDesc("mcp_consumer_redelivered", "Jobs currently redelivered, by consumer.", []string{"consumer"}, nil)})
}

type jsCollector struct {
	js                           jetstream.JetStream
	stream, pending, acks, redel *prometheus.Desc
}

func (c *jsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.stream
	ch <- c.pending
	ch <- c.acks
	ch <- c.redel
}

func (c *jsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, messages.JobStream)
	if err != nil {
		return
	}
	if info, err := s.Info(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.stream, prometheus.GaugeValue, float64(info.State.Msgs))
	}
	for _, k := range messages.Kinds {
		cons, err := s.Consumer(ctx, k.Durable())
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), k.Durable())
		ch <- prometheus.MustNewConstMetric(c.acks, prometheus.GaugeValue, float64(info.NumAckPending), k.Durable())
		ch <- prometheus.MustNewConstMetric(c.redel, prometheus.GaugeValue, float64(info.NumRedelivered), k.Durable())
	}
}
