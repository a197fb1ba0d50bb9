package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Berth's own headers of a delivery, beside the signature's.
const (
	// HeaderEventType is the event's detail type.
	HeaderEventType = "berth-event-type"
	// HeaderAttempt is the attempt's number, 1 for the first.
	HeaderAttempt = "berth-delivery-attempt"
	// HeaderCause is the cause of a change the engine made by itself
	// (CauseLifecycle); absent for a change a request asked for.
	HeaderCause = "berth-event-cause"
)

// UserAgent is the User-Agent of a delivery.
const UserAgent = "Berth-Webhook/1"

// maxAnswer bounds what is read of a receiver's answer (the rest is
// discarded with the connection); maxErrorText what an error quotes of it.
const (
	maxAnswer    = 64 << 10
	maxErrorText = 256
)

// Attempt is one POST of an event to an endpoint.
type Attempt struct {
	// URL is the endpoint's.
	URL string
	// Key signs the attempt.
	Key []byte
	// Body is the event's JSON, as delivered.
	Body []byte
	// ID, DetailType and Cause are the event's id, detail type and cause
	// ("" for none).
	ID, DetailType, Cause string
	// Number is the attempt's number, 1 for the first.
	Number int
	// Now is the attempt's time (the signature's timestamp).
	Now time.Time
}

// ErrRejected reports an attempt that the receiver answered with a status
// other than 2xx (a redirect is not followed: it is an answer too).
var ErrRejected = errors.New("events: the receiver did not accept the delivery")

// Post makes attempt a with client c, within ctx (whose deadline is the
// endpoint's timeout). It returns nil when the receiver answered 2xx; else
// an error wrapping ErrRejected (with the status and the start of the
// answer) or the transport's error.
func Post(ctx context.Context, c *http.Client, a Attempt) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(a.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderEventType, a.DetailType)
	req.Header.Set(HeaderAttempt, strconv.Itoa(a.Number))
	if a.Cause != "" {
		req.Header.Set(HeaderCause, a.Cause)
	}
	SetHeaders(req.Header, a.Key, a.ID, a.Now, a.Body)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	text := strings.TrimSpace(string(answer))
	if len(text) > maxErrorText {
		text = text[:maxErrorText]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
		text += "..."
	}
	if text == "" {
		return fmt.Errorf("%w: %s", ErrRejected, resp.Status)
	}
	return fmt.Errorf("%w: %s: %s", ErrRejected, resp.Status, text)
}

// NoRedirects is an http.Client's CheckRedirect that follows none: a
// webhook's answer is its first.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
