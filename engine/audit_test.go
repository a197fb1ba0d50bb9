package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/clock"
)

// auditSample is a record as the authorization seam writes one.
func auditSample(e *Engine, user string, d AuditDecision) AuditRecord {
	p, err := NewPrincipal(e.opts.Account, "", user, nil)
	if err != nil {
		panic(err)
	}
	r := AuditRecord{
		RequestID: "req-" + user, SourceIP: "192.0.2.10", UserAgent: "crane/0.20",
		API: AuditAPIOCI, Method: "PUT", Path: "/v2/app/manifests/v1",
		Action: "ecr:PutImage", Resource: e.RepositoryARN("app"), Repository: "app",
		Parameters: map[string]string{"imageTag": "v1"},
		Decision:   d, Statement: `identity policy "admin" statement 0`,
	}
	r.SetPrincipal(p)
	r.Mutating = d == AuditAllow
	return r
}

// TestAuditRoundTrip: a record written through the engine reads back
// with every field, through AuditRecords and through an export decoded
// line by line; queries select by principal, repository, action and
// decision; the status counts the records by decision.
func TestAuditRoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	o := quietOptions()
	o.Clock, o.Account, o.Region = clk, "123456789012", "eu-west-1"
	e := openTestEngine(t, o)

	allow := auditSample(e, "alice", AuditAllow)
	require.NoError(t, e.RecordAudit(ctx, allow, false))
	clk.Advance(time.Second)
	deny := auditSample(e, "bob", AuditExplicitDeny)
	deny.Statement = `repository policy "repository/app" statement 1 (Sid "NoPush")`
	require.NoError(t, e.RecordAudit(ctx, deny, true))
	clk.Advance(time.Second)
	anon := auditSample(e, "carol", AuditImplicitDeny)
	anon.SetPrincipal(Principal{Account: e.opts.Account})
	anon.Action, anon.Method, anon.ReadOnly = "ecr:BatchGetImage", "GET", true
	require.NoError(t, e.RecordAudit(ctx, anon, true))

	var got []AuditRecord
	require.NoError(t, e.AuditRecords(ctx, AuditQuery{OldestFirst: true}, func(r AuditRecord) error {
		got = append(got, r)
		return nil
	}))
	require.Len(t, got, 3)
	want := allow
	want.Time = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	want.EventID = got[0].EventID
	require.NotEmpty(t, want.EventID)
	require.Equal(t, want, got[0])
	require.Equal(t, "arn:aws:iam::123456789012:user/alice", got[0].PrincipalARN)
	require.Equal(t, UserID("123456789012", "alice"), got[0].UserID)
	require.Equal(t, "arn:aws:ecr:eu-west-1:123456789012:repository/app", got[0].Resource)
	require.Equal(t, "AccessDenied", got[1].ErrorCode, "a denial is AccessDenied")
	require.Equal(t, deny.Statement, got[1].Statement)
	require.Equal(t, "*", got[2].PrincipalARN)
	require.Equal(t, AuditAnonymous, got[2].PrincipalType)

	count := func(q AuditQuery) int {
		n := 0
		require.NoError(t, e.AuditRecords(ctx, q, func(AuditRecord) error { n++; return nil }))
		return n
	}
	require.Equal(t, 1, count(AuditQuery{Principal: "alice"}))
	require.Equal(t, 1, count(AuditQuery{Principal: "arn:aws:iam::123456789012:user/bob"}))
	require.Equal(t, 2, count(AuditQuery{Decision: AuditAnyDenial}))
	require.Equal(t, 1, count(AuditQuery{Decision: AuditImplicitDeny}))
	require.Equal(t, 2, count(AuditQuery{Action: "ecr:put*"}))
	require.Equal(t, 3, count(AuditQuery{Repository: "app"}))
	require.Equal(t, 0, count(AuditQuery{Repository: "other"}))
	require.Equal(t, 2, count(AuditQuery{Since: want.Time.Add(time.Second)}))
	require.Equal(t, 1, count(AuditQuery{Until: want.Time.Add(time.Second)}))
	require.Equal(t, 1, count(AuditQuery{Limit: 1}))
	var newest AuditRecord
	require.NoError(t, e.AuditRecords(ctx, AuditQuery{Limit: 1}, func(r AuditRecord) error { newest = r; return nil }))
	require.Equal(t, "ecr:BatchGetImage", newest.Action, "newest first by default")
	stop := errors.New("stop")
	require.ErrorIs(t, e.AuditRecords(ctx, AuditQuery{}, func(AuditRecord) error { return stop }), stop)

	var buf bytes.Buffer
	require.NoError(t, e.ExportAudit(ctx, AuditQuery{OldestFirst: true}, &buf))
	sc := bufio.NewScanner(&buf)
	i := 0
	for sc.Scan() {
		r, err := DecodeAuditRecord(sc.Bytes())
		require.NoError(t, err)
		require.Equal(t, got[i], r)
		i++
	}
	require.Equal(t, 3, i)
	_, err := DecodeAuditRecord([]byte("not json"))
	require.ErrorIs(t, err, ErrInvalidArgument)

	st := e.AuditStatus()
	require.True(t, st.Enabled)
	require.True(t, st.Healthy)
	require.Equal(t, filepath.Join(e.Dir(), "audit"), st.Dir)
	require.Equal(t, uint64(1), st.Allowed)
	require.Equal(t, uint64(1), st.ExplicitDenied)
	require.Equal(t, uint64(1), st.ImplicitDenied)
	require.Positive(t, st.Bytes)
	require.Equal(t, want.Time, st.Oldest)
}

// TestAuditRefusals: records without what every record needs, queries
// that cannot be answered, and a closed engine are refused with typed
// errors.
func TestAuditRefusals(t *testing.T) {
	ctx := context.Background()
	e, err := Open(t.TempDir(), quietOptions())
	require.NoError(t, err)
	good := auditSample(e, "alice", AuditAllow)
	for name, mutate := range map[string]func(*AuditRecord){
		"no action":        func(r *AuditRecord) { r.Action = "" },
		"action unnamed":   func(r *AuditRecord) { r.Action = "PutImage" },
		"no decision":      func(r *AuditRecord) { r.Decision = "" },
		"a query decision": func(r *AuditRecord) { r.Decision = AuditAnyDenial },
		"no principal":     func(r *AuditRecord) { r.PrincipalType = "" },
		"no API":           func(r *AuditRecord) { r.API = "" },
		"no resource":      func(r *AuditRecord) { r.Resource = "" },
	} {
		r := good
		mutate(&r)
		require.ErrorIs(t, e.RecordAudit(ctx, r, true), ErrInvalidArgument, name)
	}
	none := func(AuditRecord) error { return nil }
	require.ErrorIs(t, e.AuditRecords(ctx, AuditQuery{Limit: -1}, none), ErrInvalidArgument)
	require.ErrorIs(t, e.AuditRecords(ctx, AuditQuery{Decision: "Maybe"}, none), ErrInvalidArgument)
	now := time.Now()
	require.ErrorIs(t, e.ExportAudit(ctx, AuditQuery{Since: now, Until: now.Add(-time.Hour)}, &bytes.Buffer{}), ErrInvalidArgument)
	require.Zero(t, e.AuditStatus().Allowed)

	require.NoError(t, e.Close())
	require.ErrorIs(t, e.RecordAudit(ctx, good, false), ErrClosed)
	require.ErrorIs(t, e.AuditRecords(ctx, AuditQuery{}, none), ErrClosed)
}

// TestAuditOptions: the log is in <dir>/audit by default, created for a
// store that had none (as an older Berth left it), elsewhere with
// AuditDir, absent with DisableAudit; bounds are validated.
func TestAuditOptions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(dir, quietOptions())
	require.NoError(t, err)
	require.NoError(t, e.RecordAudit(ctx, auditSample(e, "alice", AuditAllow), false))
	require.NoError(t, e.Close())

	// A store without an audit directory (made before the log existed).
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "audit")))
	e, err = Open(dir, quietOptions())
	require.NoError(t, err)
	require.DirExists(t, filepath.Join(dir, "audit"))
	require.NoError(t, e.RecordAudit(ctx, auditSample(e, "alice", AuditAllow), true))
	require.NoError(t, e.Close())

	// Elsewhere.
	elsewhere := filepath.Join(t.TempDir(), "trail")
	o := quietOptions()
	o.AuditDir = elsewhere
	e, err = Open(dir, o)
	require.NoError(t, err)
	require.NoError(t, e.RecordAudit(ctx, auditSample(e, "bob", AuditAllow), true))
	require.Equal(t, elsewhere, e.AuditStatus().Dir)
	require.NoError(t, e.Close())
	entries, err := os.ReadDir(elsewhere)
	require.NoError(t, err)
	require.Len(t, entries, 2, "LOCK and one segment")

	// Disabled: nothing recorded, nothing to query.
	dir2 := t.TempDir()
	o = quietOptions()
	o.DisableAudit = true
	e, err = Open(dir2, o)
	require.NoError(t, err)
	require.NoError(t, e.RecordAudit(ctx, auditSample(e, "alice", AuditAllow), true))
	require.ErrorIs(t, e.AuditRecords(ctx, AuditQuery{}, func(AuditRecord) error { return nil }), ErrAuditDisabled)
	require.ErrorIs(t, e.ExportAudit(ctx, AuditQuery{}, &bytes.Buffer{}), ErrAuditDisabled)
	require.False(t, e.AuditStatus().Enabled)
	require.NoDirExists(t, filepath.Join(dir2, "audit"))
	require.NoError(t, e.Close())

	// Bounds.
	o = quietOptions()
	o.AuditMaxBytes = 4096
	_, err = Open(t.TempDir(), o)
	require.ErrorIs(t, err, ErrInvalidArgument)
	o = quietOptions()
	o.EnsureDefaults()
	require.Equal(t, DefaultAuditMaxAge, o.AuditMaxAge)
	require.Equal(t, int64(DefaultAuditMaxBytes), o.AuditMaxBytes)
}

// TestAuditRetention: AuditMaxAge is carried out on the engine's clock:
// once a day's segment is older than the bound, the next day's first
// record closes it and it goes.
func TestAuditRetention(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	o := quietOptions()
	o.Clock, o.AuditMaxAge = clk, 24*time.Hour
	e := openTestEngine(t, o)
	require.NoError(t, e.RecordAudit(ctx, auditSample(e, "old", AuditAllow), true))
	clk.Advance(3 * 24 * time.Hour)
	require.NoError(t, e.RecordAudit(ctx, auditSample(e, "new", AuditAllow), true))
	users := func() []string {
		var out []string
		require.NoError(t, e.AuditRecords(ctx, AuditQuery{}, func(r AuditRecord) error {
			out = append(out, r.UserName)
			return nil
		}))
		return out
	}
	// Retention deletes in a goroutine of the log's, after the rotation.
	require.Eventually(t, func() bool { return len(users()) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"new"}, users())
}
