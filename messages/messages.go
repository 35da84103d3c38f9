package messages

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Version is the envelope version this build writes. Decoders refuse any other.
const Version = 1

// Kind is a kind of job. Each kind has its own subject and durable consumer.
type Kind string

// Job kinds.
const (
	KindExecute Kind = "execute"
	KindTest    Kind = "test"
	KindOAuth   Kind = "oauth"
)

// Kinds lists every job kind.
var Kinds = []Kind{KindExecute, KindTest, KindOAuth}

// Class is the delivery guarantee of a job, chosen by the API node.
type Class int

const (
	// Durable jobs have side effects or nobody waiting for them: writes on
	// allow_writes connections, app actions, OAuth callbacks and every async
	// execute. They go to a file stream that fsyncs every write before
	// acknowledging it, so an acknowledged job is never lost.
	Durable Class = iota
	// Fast jobs are synchronous reads answered to a caller who waits. They go
	// to a memory stream: no fsync. If NATS crashes the waiting caller gets a
	// 503 or 504 and retries; replaying a read is harmless.
	Fast
)

// FastKinds are the kinds that can be Fast: reads and connection tests.
var FastKinds = []Kind{KindExecute, KindTest}

func (c Class) String() string {
	if c == Fast {
		return "fast"
	}
	return "durable"
}

// Stream is the JetStream stream of a class.
func (c Class) Stream() string {
	if c == Fast {
		return FastStream
	}
	return JobStream
}

// SubjectPrefix prefixes the subjects of a class.
func (c Class) SubjectPrefix() string {
	if c == Fast {
		return FastSubjectPrefix
	}
	return JobSubjectPrefix
}

// Stream and subject names.
const (
	// JobStream is the file work-queue stream of durable jobs.
	JobStream = "MCP_JOBS"
	// JobSubjectPrefix prefixes each kind's durable subject: mcp.jobs.<kind>.
	JobSubjectPrefix = "mcp.jobs."
	// FastStream is the memory work-queue stream of fast jobs.
	FastStream = "MCP_FAST"
	// FastSubjectPrefix prefixes each kind's fast subject: mcp.fast.<kind>.
	FastSubjectPrefix = "mcp.fast."
	// ResultSubjectPrefix prefixes async results: mcp.results.<user-token>.<job_id>.
	ResultSubjectPrefix = "mcp.results."
	// EventDatabaseChanged is published (core NATS) when a user database is
	// edited or removed, so that workers close its pool. The body is the db_id.
	EventDatabaseChanged = "mcp.events.database.changed"
	// EventToolsChanged is published when a user's tool list changes. The body
	// is the user id.
	EventToolsChanged = "mcp.events.tools.changed"
	// JobStatusBucket is the JetStream KV bucket of job statuses and results.
	JobStatusBucket = "MCP_JOB_STATUS"
)

// Subject returns the durable JetStream subject of a job kind.
func (k Kind) Subject() string { return JobSubjectPrefix + string(k) }

// SubjectOf returns the subject of a job kind in a class.
func (k Kind) SubjectOf(c Class) string { return c.SubjectPrefix() + string(k) }

// Durable returns the durable consumer name shared by every worker process.
func (k Kind) Durable() string { return "mcp-" + string(k) }

// ConsumerOf returns the durable consumer name of a kind in a class.
func (k Kind) ConsumerOf(c Class) string {
	if c == Fast {
		return "mcp-fast-" + string(k)
	}
	return k.Durable()
}

// Header names carried on jobs and replies.
const (
	HeaderMsgID     = "Nats-Msg-Id"    // the job id, for JetStream dedupe: durable jobs only
	HeaderReplyTo   = "Mcp-Reply-To"   // the waiting API node's inbox
	HeaderDeadline  = "Mcp-Deadline"   // RFC 3339: when the waiting caller gives up
	HeaderRequestID = "Mcp-Request-Id" // the REST request id, for logs
	HeaderVersion   = "Mcp-Version"    // envelope version
	HeaderJobID     = "Mcp-Job-Id"     // on jobs: the job id; on replies: which job this answers
	HeaderOutcome   = "Mcp-Outcome"    // on replies: "ok" or "error"
	HeaderErrorCode = "Mcp-Error-Code" // on error replies: the stable error code
	HeaderTrace     = "traceparent"    // W3C trace context
)

// Outcomes of a reply.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
)

// Job is the versioned envelope of every job. Payload depends on Kind.
type Job struct {
	V         int             `json:"v"`
	Kind      Kind            `json:"kind"`
	JobID     string          `json:"job_id"`
	UserID    string          `json:"user_id,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Payload   json.RawMessage `json:"payload"`

	// RequestID and Trace travel in headers, for logs and traces.
	RequestID string `json:"-"`
	Trace     string `json:"-"`

	execute *ExecutePayload // decoded once, by Execute
}

// Execute returns the payload of an execute job, decoding it on the first
// call only: the worker's routing, gating and handler all read it, and the
// tool's params inside stay undecoded for the connector.
func (j *Job) Execute() (*ExecutePayload, error) {
	if j.execute != nil {
		return j.execute, nil
	}
	var pl ExecutePayload
	if err := j.Decode(&pl); err != nil {
		return nil, err
	}
	j.execute = &pl
	return j.execute, nil
}

// ExecutePayload asks a worker to run one tool. It carries ids only: the
// worker loads credentials from storage.
type ExecutePayload struct {
	Action  string          `json:"action"`
	Params  json.RawMessage `json:"params,omitempty"`
	MaxRows int             `json:"max_rows,omitempty"`
	Async   bool            `json:"async,omitempty"`
}

// TestPayload asks a worker to test a connection: either unsaved
// parameters, Sealed being the Fernet token of their JSON (no plaintext
// secret travels on the bus), or the job user's saved database DBID, whose
// stored credentials the worker loads.
type TestPayload struct {
	DBType string `json:"db_type,omitempty"`
	Sealed string `json:"sealed,omitempty"`
	DBID   string `json:"db_id,omitempty"`
}

// OAuthPayload carries an OAuth callback's query to a worker.
type OAuthPayload struct {
	Query map[string]string `json:"query"`
}

// ErrVersion is returned for an envelope of another version.
var ErrVersion = errors.New("messages: unsupported envelope version")

// NewJob builds a job around a payload, encoding the payload once.
func NewJob(kind Kind, jobID, userID string, payload any) (*Job, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("messages: encode %s payload: %w", kind, err)
	}
	return &Job{V: Version, Kind: kind, JobID: jobID, UserID: userID, CreatedAt: time.Now().UTC(), Payload: p}, nil
}

// Encode returns the envelope's bytes.
func (j *Job) Encode() ([]byte, error) {
	j.V = Version
	return json.Marshal(j)
}

// DecodeJob parses and checks an envelope.
func DecodeJob(data []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("messages: malformed job: %w", err)
	}
	if j.V != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, j.V)
	}
	switch j.Kind {
	case KindExecute, KindTest, KindOAuth:
	default:
		return nil, fmt.Errorf("messages: unknown job kind %q", j.Kind)
	}
	if j.JobID == "" {
		return nil, errors.New("messages: job without job_id")
	}
	return &j, nil
}

// Decode parses the job's payload into v.
func (j *Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("messages: malformed %s payload: %w", j.Kind, err)
	}
	return nil
}

// UserToken is a subject-safe, fixed-length token for a user id. Raw user ids
// may contain '.', '*' or '>', which would change a subject's meaning.
func UserToken(userID string) string {
	sum := sha256.Sum256([]byte(userID))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20]))
}

// ResultSubject is where an async caller receives a job's result.
func ResultSubject(userID, jobID string) string {
	return ResultSubjectPrefix + UserToken(userID) + "." + jobID
}
