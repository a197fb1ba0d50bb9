package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// recordVersion is the version of the stored forms this package writes.
// Version 1 is the first; a reader refuses a version it does not know,
// and fields it does not know (docs/keys.md, "Engine records").
const recordVersion = 1

// Causes of a change the engine made by itself, for Queued.Cause.
const (
	// CauseLifecycle: a lifecycle policy expired the image.
	CauseLifecycle = "lifecycle"
)

// Queued is an event as the engine queues it (index key e), written in
// the batch of the change it reports.
type Queued struct {
	// At is when the event was emitted, with nanoseconds (the event's
	// own time has whole seconds): the delivery latency counts from it.
	At time.Time
	// Cause is why the engine made the change by itself (CauseLifecycle),
	// or "" for a change a request asked for. It is not in the event
	// (ECR's shapes have no such field): it goes into the audit record
	// and the berth-event-cause header of a delivery.
	Cause string
	// Event is the event.
	Event *Event
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

// storedQueued and storedDelivery are the JSON of Queued and Delivery.
type storedQueued struct {
	Version int       `json:"version"`
	At      time.Time `json:"at"`
	Cause   string    `json:"cause,omitempty"`
	Event   *Event    `json:"event"`
}

type storedDelivery struct {
	Version       int       `json:"version"`
	At            time.Time `json:"at"`
	Cause         string    `json:"cause,omitempty"`
	Attempts      int       `json:"attempts,omitempty"`
	LastAttemptAt time.Time `json:"lastAttemptAt,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
	DeadAt        time.Time `json:"deadAt,omitzero"`
	DeadReason    string    `json:"deadReason,omitempty"`
	Event         *Event    `json:"event"`
}

// EncodeQueued is q's stored form.
func EncodeQueued(q *Queued) ([]byte, error) {
	if q.Event == nil {
		return nil, fmt.Errorf("%w: no event", ErrInvalid)
	}
	return json.Marshal(storedQueued{Version: recordVersion, At: q.At.UTC(), Cause: q.Cause, Event: q.Event})
}

// DecodeQueued reads a stored Queued.
func DecodeQueued(b []byte) (*Queued, error) {
	var s storedQueued
	if err := decodeStrict(b, &s); err != nil {
		return nil, err
	}
	if err := checkStored(s.Version, s.Event); err != nil {
		return nil, err
	}
	return &Queued{At: s.At, Cause: s.Cause, Event: s.Event}, nil
}

// EncodeDelivery is d's stored form.
func EncodeDelivery(d *Delivery) ([]byte, error) {
	if d.Event == nil {
		return nil, fmt.Errorf("%w: no event", ErrInvalid)
	}
	return json.Marshal(storedDelivery{
		Version: recordVersion, At: d.At.UTC(), Cause: d.Cause, Attempts: d.Attempts,
		LastAttemptAt: utc(d.LastAttemptAt), LastError: d.LastError, NextAttemptAt: utc(d.NextAttemptAt),
		DeadAt: utc(d.DeadAt), DeadReason: d.DeadReason, Event: d.Event,
	})
}

// DecodeDelivery reads a stored Delivery.
func DecodeDelivery(b []byte) (*Delivery, error) {
	var s storedDelivery
	if err := decodeStrict(b, &s); err != nil {
		return nil, err
	}
	if err := checkStored(s.Version, s.Event); err != nil {
		return nil, err
	}
	if s.Attempts < 0 {
		return nil, fmt.Errorf("%w: %d attempts", ErrInvalid, s.Attempts)
	}
	return &Delivery{
		Queued:   Queued{At: s.At, Cause: s.Cause, Event: s.Event},
		Attempts: s.Attempts, LastAttemptAt: s.LastAttemptAt, LastError: s.LastError,
		NextAttemptAt: s.NextAttemptAt, DeadAt: s.DeadAt, DeadReason: s.DeadReason,
	}, nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// decodeStrict decodes one JSON object into v, refusing unknown fields
// and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the record", ErrInvalid)
	}
	return nil
}

// checkStored checks a stored record's version and event.
func checkStored(version int, ev *Event) error {
	if version != recordVersion {
		return fmt.Errorf("%w: unknown record version %d", ErrInvalid, version)
	}
	if ev == nil {
		return fmt.Errorf("%w: no event", ErrInvalid)
	}
	return ev.Validate()
}
