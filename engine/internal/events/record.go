package events

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// Causes of a change the engine made by itself, for Queued.Cause.
const (
	// CauseLifecycle: a lifecycle policy expired the image.
	CauseLifecycle = "lifecycle"
)

// Queued is an event as the engine queues it (index key e), written in
// the batch of the change it reports: the event's JSON as it is
// delivered, and what routing and delivery need without decoding it.
type Queued struct {
	// At is when the event was emitted, with nanoseconds (the event's
	// own time has whole seconds): the delivery latency counts from it.
	At time.Time
	// Cause is why the engine made the change by itself (CauseLifecycle),
	// or "" for a change a request asked for. It is not in the event
	// (ECR's shapes have no such field): it goes into the audit record
	// and the berth-event-cause header of a delivery.
	Cause string
	// ID, DetailType and Repository are the event's id, detail type and
	// repository.
	ID, DetailType, Repository string
	// Body is the event's JSON, byte for byte what every attempt sends.
	Body []byte
}

// NewQueued is the queued form of ev, emitted at at.
func NewQueued(ev *Event, at time.Time, cause string) (*Queued, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return &Queued{At: at, Cause: cause, ID: ev.ID, DetailType: ev.DetailType, Repository: ev.Repository(), Body: body}, nil
}

// Event decodes the event of q's Body.
func (q *Queued) Event() (*Event, error) {
	var ev Event
	if err := json.Unmarshal(q.Body, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return &ev, nil
}

// Delivery is a queued event routed to one webhook endpoint (index key
// w), or given up (a dead letter, key W).
type Delivery struct {
	Queued
	// Attempts counts the attempts made so far.
	Attempts int
	// LastAttemptAt is when the last attempt was made; LastError what it
	// met (an HTTP status and the start of the answer, or the transport's
	// error).
	LastAttemptAt time.Time
	LastError     string
	// NextAttemptAt is when the next attempt is due (zero: at once).
	NextAttemptAt time.Time
	// DeadAt is when the delivery was given up, and DeadReason why (the
	// attempts or the age exhausted), for a dead letter.
	DeadAt     time.Time
	DeadReason string
}

// The stored forms are binary, in the index's codec style (docs/keys.md):
// a version byte, then the fields, the body last:
//
//	queued:   1, time At, string Cause, string ID, string DetailType,
//	          string Repository, bytes Body
//	delivery: 1, time At, string Cause, string ID, string DetailType,
//	          string Repository, uvarint Attempts, time LastAttemptAt,
//	          string LastError, time NextAttemptAt, time DeadAt,
//	          string DeadReason, bytes Body
//
// where a string or bytes is a uvarint length and the bytes, and a time
// a varint (0 for the zero time, else UnixNano, plus 1 when >= 0). Every
// route and every attempt reads one; JSON with a version field cost two
// strict decodes and a re-encoding per delivery (measured:
// docs/events.md). A reader refuses a version byte it does not know.
const (
	queuedV1   byte = 1
	deliveryV1 byte = 1
)

// maxField bounds one string field of a stored record, and maxBody its
// body: larger ones are corrupt.
const (
	maxField = 64 << 10
	maxBody  = 1 << 20
)

// EncodeQueued is q's stored form.
func EncodeQueued(q *Queued) []byte {
	b := make([]byte, 0, 48+len(q.Cause)+len(q.ID)+len(q.DetailType)+len(q.Repository)+len(q.Body))
	b = append(b, queuedV1)
	b = q.appendHead(b)
	return appendBytes(b, q.Body)
}

// DecodeQueued reads a stored Queued. Body is a copy.
func DecodeQueued(b []byte) (*Queued, error) {
	d := decoder{b: b}
	if d.byte() != queuedV1 {
		return nil, fmt.Errorf("%w: queued event: unknown version", ErrInvalid)
	}
	var q Queued
	q.readHead(&d)
	q.Body = d.bytes(maxBody)
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("%w: queued event: %v", ErrInvalid, err)
	}
	return &q, q.check()
}

// EncodeDelivery is d's stored form.
func EncodeDelivery(d *Delivery) []byte {
	b := make([]byte, 0, 80+len(d.Cause)+len(d.ID)+len(d.DetailType)+len(d.Repository)+len(d.LastError)+len(d.DeadReason)+len(d.Body))
	b = append(b, deliveryV1)
	b = d.appendHead(b)
	b = binary.AppendUvarint(b, uint64(d.Attempts))
	b = appendTime(b, d.LastAttemptAt)
	b = appendBytes(b, []byte(d.LastError))
	b = appendTime(b, d.NextAttemptAt)
	b = appendTime(b, d.DeadAt)
	b = appendBytes(b, []byte(d.DeadReason))
	return appendBytes(b, d.Body)
}

// DecodeDelivery reads a stored Delivery. Body is a copy.
func DecodeDelivery(b []byte) (*Delivery, error) {
	d := decoder{b: b}
	if d.byte() != deliveryV1 {
		return nil, fmt.Errorf("%w: delivery: unknown version", ErrInvalid)
	}
	var out Delivery
	out.readHead(&d)
	attempts := d.uvarint()
	out.LastAttemptAt = d.time()
	out.LastError = string(d.bytes(maxField))
	out.NextAttemptAt = d.time()
	out.DeadAt = d.time()
	out.DeadReason = string(d.bytes(maxField))
	out.Body = d.bytes(maxBody)
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("%w: delivery: %v", ErrInvalid, err)
	}
	if attempts > 1<<31 {
		return nil, fmt.Errorf("%w: delivery: %d attempts", ErrInvalid, attempts)
	}
	out.Attempts = int(attempts)
	return &out, out.check()
}

func (q *Queued) appendHead(b []byte) []byte {
	b = appendTime(b, q.At)
	b = appendBytes(b, []byte(q.Cause))
	b = appendBytes(b, []byte(q.ID))
	b = appendBytes(b, []byte(q.DetailType))
	return appendBytes(b, []byte(q.Repository))
}

func (q *Queued) readHead(d *decoder) {
	q.At = d.time()
	q.Cause = string(d.bytes(maxField))
	q.ID = string(d.bytes(maxField))
	q.DetailType = string(d.bytes(maxField))
	q.Repository = string(d.bytes(maxField))
}

// check reports what a decoded record lacks.
func (q *Queued) check() error {
	switch {
	case q.ID == "":
		return fmt.Errorf("%w: stored event without an id", ErrInvalid)
	case !KnownDetailType(q.DetailType):
		return fmt.Errorf("%w: stored event of detail type %q", ErrInvalid, q.DetailType)
	case len(q.Body) == 0 || q.Body[0] != '{':
		return fmt.Errorf("%w: stored event without a JSON body", ErrInvalid)
	}
	return nil
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	n := t.UnixNano()
	if n >= 0 {
		n++
	}
	return binary.AppendVarint(b, n)
}

// decoder reads a stored record; the first problem sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or malformed %s", what)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("version")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("time")
		return time.Time{}
	}
	d.b = d.b[n:]
	if v == 0 {
		return time.Time{}
	}
	if v > 0 {
		v--
	}
	return time.Unix(0, v).UTC()
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) || n > uint64(limit) {
		d.fail("field")
		return nil
	}
	out := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return out
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the record", len(d.b))
	}
	return d.err
}
