package admin

// GET /admin/v1/events: the event queue, the webhooks' pending
// deliveries or their dead letters, as JSON lines; POST
// /admin/v1/events/redrive: a webhook's dead letters back to its queue
// (docs/events.md).

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/oci"
)

// EventsContentType is the media type of the events route's answer: JSON
// lines, one engine.EventListing each.
const EventsContentType = "application/x-ndjson"

// The events routes' query parameters.
const (
	EventsState   = "state"   // queued, pending (default) or dead
	EventsWebhook = "webhook" // one webhook's (events), the webhook to redrive (events/redrive)
	EventsLimit   = "limit"   // most listed; 0 or absent: all
)

// EventStore is the role of the store the events routes drive.
type EventStore interface {
	ListEvents(ctx context.Context, q engine.EventQuery, fn func(engine.EventListing) error) error
	RedriveEvents(ctx context.Context, webhook string) (int, error)
}

var _ EventStore = (*engine.Engine)(nil)

// ParseEventQuery reads the events route's parameters (which `registryd
// events list` on a store parses too, so both read them alike).
func ParseEventQuery(v url.Values) (engine.EventQuery, error) {
	q := engine.EventQuery{State: engine.EventState(v.Get(EventsState)), Webhook: v.Get(EventsWebhook)}
	switch q.State {
	case "":
		q.State = engine.EventPending
	case engine.EventQueued, engine.EventPending, engine.EventDead:
	default:
		return q, errors.New("state: want queued, pending or dead")
	}
	if q.State == engine.EventQueued && q.Webhook != "" {
		return q, errors.New("webhook: queued events are not yet any webhook's")
	}
	if s := v.Get(EventsLimit); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, errors.New("limit: want a count (0: all)")
		}
		q.Limit = n
	}
	return q, nil
}

// events serves GET events?state=&webhook=&limit=.
func (a *API) events(w http.ResponseWriter, r *http.Request) error {
	q, err := ParseEventQuery(r.URL.Query())
	if err != nil {
		return oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	out := &startedWriter{w: w, contentType: EventsContentType}
	enc := json.NewEncoder(out)
	err = a.store.ListEvents(r.Context(), q, func(l engine.EventListing) error { return enc.Encode(l) })
	switch {
	case err == nil:
		if !out.started {
			out.header()
			w.WriteHeader(http.StatusOK)
		}
		return nil
	case out.started:
		a.log.Error("events listing failed after its first lines", "err", err)
		return nil
	case errors.Is(err, engine.ErrInvalidArgument):
		return oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	return err
}

// RedriveResult is the answer of POST events/redrive.
type RedriveResult struct {
	Webhook  string `json:"webhook"`
	Redriven int    `json:"redriven"`
}

// redriveEvents serves POST events/redrive?webhook=.
func (a *API) redriveEvents(r *http.Request, _ []byte) (any, error) {
	name := r.URL.Query().Get(EventsWebhook)
	if name == "" {
		return nil, oci.NewError(oci.CodeInvalidArgument, "webhook is required", nil)
	}
	n, err := a.store.RedriveEvents(r.Context(), name)
	if errors.Is(err, engine.ErrInvalidArgument) {
		return nil, oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	if err != nil {
		return nil, err
	}
	return RedriveResult{Webhook: name, Redriven: n}, nil
}
