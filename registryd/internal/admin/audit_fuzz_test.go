package admin

import (
	"net/url"
	"testing"
	"time"

	"github.com/berthstore/berth/engine"
)

// FuzzParseAuditQuery: the audit route's parameters come from any
// client: parsing never panics, and a query it accepts is one the log
// can answer (a limit of 0 or more, Until not before Since, a known
// decision).
func FuzzParseAuditQuery(f *testing.F) {
	f.Add("1h", "", "alice", "team/app", "ecr:*", "Deny", "10", "oldest")
	f.Add("2026-11-23", "2026-11-24T00:00:00Z", "", "", "", "allow", "0", "newest")
	f.Add("7d", "-1h", "", "", "", "Maybe", "-1", "random")
	f.Add("99999999999d", "1e9h", "", "", "", "", "99999999999999999999", "")
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, since, until, principal, repo, action, decision, limit, order string) {
		v := url.Values{}
		for k, s := range map[string]string{AuditSince: since, AuditUntil: until, AuditPrincipal: principal,
			AuditRepository: repo, AuditAction: action, AuditDecision: decision, AuditLimit: limit, AuditOrder: order} {
			v.Set(k, s)
		}
		q, err := ParseAuditQuery(v, now)
		if err != nil {
			return
		}
		if q.Limit < 0 {
			t.Fatalf("limit %d accepted", q.Limit)
		}
		if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
			t.Fatalf("until %s before since %s accepted", q.Until, q.Since)
		}
		switch q.Decision {
		case "", engine.AuditAllow, engine.AuditAnyDenial, engine.AuditExplicitDeny, engine.AuditImplicitDeny:
		default:
			t.Fatalf("decision %q accepted", q.Decision)
		}
	})
}
