package admin

// GET /admin/v1/audit: the audit log's records as CloudTrail-shaped JSON
// lines, selected by the query parameters (docs/audit.md).

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/oci"
)

// AuditContentType is the media type of the audit route's answer: JSON
// lines, one CloudTrail event each.
const AuditContentType = "application/x-ndjson"

// The audit route's query parameters.
const (
	AuditSince      = "since"      // RFC 3339 time, or a duration before now ("1h", "7d")
	AuditUntil      = "until"      // as since; records before it
	AuditPrincipal  = "principal"  // ARN or user name
	AuditRepository = "repository" // repository name
	AuditAction     = "action"     // action, or a pattern with * and ?
	AuditDecision   = "decision"   // Allow, Deny (either denial), ExplicitDeny, ImplicitDeny
	AuditLimit      = "limit"      // most records answered; 0 or absent: all
	AuditOrder      = "order"      // newest (default) or oldest
)

// audit serves GET audit?since=&until=&principal=&repository=&action=&decision=&limit=&order=.
func (a *API) audit(w http.ResponseWriter, r *http.Request) error {
	q, err := ParseAuditQuery(r.URL.Query(), time.Now())
	if err != nil {
		return oci.NewError(oci.CodeInvalidArgument, err.Error(), nil)
	}
	out := &startedWriter{w: w}
	err = a.store.ExportAudit(r.Context(), q, out)
	switch {
	case err == nil:
		if !out.started {
			out.header() // no record: an empty answer
			w.WriteHeader(http.StatusOK)
		}
		return nil
	case out.started:
		// Lines are out already: the status cannot change. The client
		// sees a truncated answer (no final newline, or fewer lines).
		a.log.Error("audit export failed after its first lines", "err", err)
		return nil
	case errors.Is(err, engine.ErrAuditDisabled):
		return oci.NewError(oci.CodeNotFound, "this registry keeps no audit log (--no-audit)", nil)
	}
	return err
}

// startedWriter sets the answer's headers on the first write, so that an
// error before any line can still be answered as an error.
type startedWriter struct {
	w           http.ResponseWriter
	started     bool
	contentType string // "": AuditContentType
}

func (s *startedWriter) header() {
	s.started = true
	ct := s.contentType
	if ct == "" {
		ct = AuditContentType
	}
	s.w.Header().Set("Content-Type", ct)
	s.w.Header().Set("Cache-Control", "no-store")
}

func (s *startedWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.header()
	}
	return s.w.Write(p)
}

// ParseAuditQuery reads an audit query from the route's parameters (the
// `registryd audit` flags have the same names and meanings); relative
// times count back from now.
func ParseAuditQuery(v url.Values, now time.Time) (engine.AuditQuery, error) {
	var q engine.AuditQuery
	var errs []error
	var err error
	if s := v.Get(AuditSince); s != "" {
		if q.Since, err = ParseAuditTime(s, now); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", AuditSince, err))
		}
	}
	if s := v.Get(AuditUntil); s != "" {
		if q.Until, err = ParseAuditTime(s, now); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", AuditUntil, err))
		}
	}
	q.Principal, q.Repository, q.Action = v.Get(AuditPrincipal), v.Get(AuditRepository), v.Get(AuditAction)
	if s := v.Get(AuditDecision); s != "" {
		if q.Decision, err = ParseAuditDecision(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", AuditDecision, err))
		}
	}
	if s := v.Get(AuditLimit); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a count (0 or more)", AuditLimit, s))
		}
	}
	switch s := v.Get(AuditOrder); s {
	case "", "newest":
	case "oldest":
		q.OldestFirst = true
	default:
		errs = append(errs, fmt.Errorf("%s: %q is neither newest nor oldest", AuditOrder, s))
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		errs = append(errs, fmt.Errorf("%s %s is before %s %s", AuditUntil, q.Until.Format(time.RFC3339), AuditSince, q.Since.Format(time.RFC3339)))
	}
	return q, errors.Join(errs...)
}

// ParseAuditTime reads a time as RFC 3339 ("2026-11-23T10:00:00Z"), a
// date ("2026-11-23", midnight UTC), or a duration back from now: Go's
// ("90m", "1h30m") or whole days ("7d").
func ParseAuditTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		var n int
		if n, err = strconv.Atoi(days); err == nil {
			if n < 0 || n > 100*365 {
				return time.Time{}, fmt.Errorf("%q: a number of days from 0 to 36500", s)
			}
			d = time.Duration(n) * 24 * time.Hour
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time, a date nor a duration before now such as 1h or 7d", s)
	}
	return now.Add(-d), nil
}

// ParseAuditDecision reads a decision to select, without case: Allow,
// Deny (either denial), ExplicitDeny or ImplicitDeny.
func ParseAuditDecision(s string) (engine.AuditDecision, error) {
	for _, d := range []engine.AuditDecision{engine.AuditAllow, engine.AuditAnyDenial, engine.AuditExplicitDeny, engine.AuditImplicitDeny} {
		if strings.EqualFold(s, string(d)) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%q: want Allow, Deny, ExplicitDeny or ImplicitDeny", s)
}
