package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/openanalyst/mcp-integration-service/messages"
)

// Settings shape the stream and consumers.
type Settings struct {
	Replicas      int           // stream replicas: 1 embedded, 3 in a cluster
	AckWait       time.Duration // how long a worker may hold a job between progress reports
	MaxDeliver    int           // deliveries before a job is given up
	MaxAckPending int           // jobs in flight across the whole fleet, per kind
	StatusTTL     time.Duration // how long job statuses stay in the bucket
	Duplicates    time.Duration // dedupe window for job ids
	// FastMaxAge drops a fast job nobody took in time: its caller has long
	// had a 504.
	FastMaxAge time.Duration
	// FastMaxBytes bounds the memory the fast stream may hold; past it a
	// publish is refused (the caller gets a 503) rather than anything dropped.
	FastMaxBytes int64
}

// DefaultSettings are safe for one embedded node.
func DefaultSettings() Settings {
	return Settings{Replicas: 1, AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1024,
		StatusTTL: 24 * time.Hour, Duplicates: 2 * time.Minute, FastMaxAge: 5 * time.Minute, FastMaxBytes: 64 << 20}
}

// Setup creates or updates the two job streams (durable: file, fsynced;
// fast: memory), one durable consumer per job kind and class, and the
// job-status bucket. It is idempotent: every process may call it.
func Setup(ctx context.Context, js jetstream.JetStream, s Settings) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        messages.JobStream,
		Description: "MCP integration service jobs (work queue)",
		Subjects:    []string{messages.JobSubjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
		Duplicates:  s.Duplicates,
		MaxAge:      s.StatusTTL,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("queue: stream %s: %w", messages.JobStream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        messages.FastStream,
		Description: "MCP integration service synchronous reads (work queue, memory: no fsync)",
		Subjects:    []string{messages.FastSubjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.MemoryStorage,
		Replicas:    s.Replicas,
		Duplicates:  s.Duplicates,
		MaxAge:      s.FastMaxAge,
		MaxBytes:    s.FastMaxBytes,
		Discard:     jetstream.DiscardNew,
	})
	if err != nil {
		return fmt.Errorf("queue: stream %s: %w", messages.FastStream, err)
	}
	for _, k := range messages.Kinds {
		if _, err := js.CreateOrUpdateConsumer(ctx, messages.JobStream, ConsumerConfig(k, messages.Durable, s)); err != nil {
			return fmt.Errorf("queue: consumer %s: %w", k.Durable(), err)
		}
	}
	for _, k := range messages.FastKinds {
		if _, err := js.CreateOrUpdateConsumer(ctx, messages.FastStream, ConsumerConfig(k, messages.Fast, s)); err != nil {
			return fmt.Errorf("queue: consumer %s: %w", k.ConsumerOf(messages.Fast), err)
		}
	}
	_, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      messages.JobStatusBucket,
		Description: "job statuses and results, for GET /api/jobs/{id}",
		TTL:         s.StatusTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
		History:     1,
	})
	if err != nil {
		return fmt.Errorf("queue: bucket %s: %w", messages.JobStatusBucket, err)
	}
	return nil
}

// ConsumerConfig is the durable consumer of one job kind in a class.
func ConsumerConfig(k messages.Kind, c messages.Class, s Settings) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       k.ConsumerOf(c),
		Description:   "workers of " + c.String() + " " + string(k) + " jobs",
		FilterSubject: k.SubjectOf(c),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.AckWait,
		MaxDeliver:    s.MaxDeliver,
		MaxAckPending: s.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// IsUnavailable reports whether err means NATS or JetStream cannot be reached.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, context.DeadlineExceeded)
}
