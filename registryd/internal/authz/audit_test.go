package authz

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/request"
)

// TestRecords: every question leaves one record with the final decision,
// the deciding statement (saying so when the open registry or an
// anonymous pull let it through), the request's details from its
// request.Info, and the caller.
func TestRecords(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	_, err = e.CreateRepository(ctx, "app", engine.RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.SetRepositoryPolicy(ctx, "app",
		`{"Version":"2012-10-17","Statement":[{"Sid":"NoPush","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}]}`))
	all, err := engine.ParseIdentityPolicy("all", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	require.NoError(t, err)
	alice, err := engine.NewPrincipal("000000000000", "", "alice", engine.NewIdentityPolicies(all))
	require.NoError(t, err)
	bob, err := engine.NewPrincipal("000000000000", "", "bob", engine.NewIdentityPolicies(all))
	require.NoError(t, err)
	anon := engine.Principal{Account: "000000000000"}
	az, err := NewIAM(e, IAMConfig{})
	require.NoError(t, err)
	open, err := NewIAM(e, IAMConfig{Open: true})
	require.NoError(t, err)
	anonPull, err := NewIAM(e, IAMConfig{AnonymousPull: true})
	require.NoError(t, err)

	info := &request.Info{RequestID: "r-1", Method: "PUT", Path: "/v2/app/manifests/v1", SourceIP: netip.MustParseAddr("192.0.2.7"),
		UserAgent: "crane/0.20", Route: "manifest", Repository: "app"}
	rctx := request.WithInfo(ctx, info)
	tests := []struct {
		name      string
		az        *IAM
		who       engine.Principal
		action    Action
		resource  Resource
		decision  engine.AuditDecision
		statement string
		mutating  bool
	}{
		{"allowed push", az, alice, PutImage, Repository("app"), engine.AuditAllow, `allowed by identity policy "all" statement 0`, true},
		{"denied push", az, bob, PutImage, Repository("app"), engine.AuditExplicitDeny, `Sid "NoPush"`, false},
		{"allowed pull", az, bob, BatchGetImage, Repository("app"), engine.AuditAllow, `identity policy "all"`, false},
		{"anonymous", az, anon, BatchGetImage, Repository("app"), engine.AuditImplicitDeny, "no statement allows", false},
		{"open registry", open, anon, PutImage, Repository("other"), engine.AuditAllow, "the registry is open", true},
		{"anonymous pull", anonPull, anon, BatchGetImage, Repository("app"), engine.AuditAllow, "anonymous pull", false},
		{"registry level", az, alice, AdminCollectGarbage, Registry, engine.AuditAllow, `identity policy "all"`, true},
		{"unknown action", az, alice, Action("ecr:Nope"), Registry, engine.AuditImplicitDeny, "does not know", false},
		{"no resource", az, alice, PutImage, Resource{}, engine.AuditImplicitDeny, "names no resource", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.az.Authorize(rctx, tt.who, tt.action, tt.resource)
			if tt.decision == engine.AuditAllow {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, engine.ErrAccessDenied)
			}
			var recs []engine.AuditRecord
			require.NoError(t, e.AuditRecords(ctx, engine.AuditQuery{Limit: 1}, func(r engine.AuditRecord) error {
				recs = append(recs, r)
				return nil
			}))
			require.Len(t, recs, 1)
			r := recs[0]
			require.Equal(t, string(tt.action), r.Action)
			require.Equal(t, tt.decision, r.Decision)
			require.Contains(t, r.Statement, tt.statement)
			require.Equal(t, tt.mutating, r.Mutating)
			require.Equal(t, !Mutating(tt.action), r.ReadOnly)
			require.Equal(t, "r-1", r.RequestID)
			require.Equal(t, "192.0.2.7", r.SourceIP)
			require.Equal(t, "crane/0.20", r.UserAgent)
			require.Equal(t, engine.AuditAPIOCI, r.API)
			require.Equal(t, "PUT", r.Method)
			require.Equal(t, "/v2/app/manifests/v1", r.Path)
			if tt.who.Anonymous() {
				require.Equal(t, "*", r.PrincipalARN)
				require.Equal(t, engine.AuditAnonymous, r.PrincipalType)
			} else {
				require.Equal(t, tt.who.ARN(), r.PrincipalARN)
				require.Equal(t, tt.who.User, r.UserName)
				require.Equal(t, engine.AuditIAMUser, r.PrincipalType)
			}
			if repo, ok := tt.resource.Repository(); ok && repo != "" && tt.action.Known() {
				require.Equal(t, e.RepositoryARN(repo), r.Resource)
				require.Equal(t, repo, r.Repository)
			} else {
				require.Equal(t, "*", r.Resource)
			}
			if tt.decision.Denied() {
				require.Equal(t, "AccessDenied", r.ErrorCode)
				require.NotEmpty(t, r.ErrorMessage)
			}
		})
	}

	// The API comes from what the handlers filled in.
	for _, c := range []struct {
		info request.Info
		api  engine.AuditAPI
	}{
		{request.Info{Route: "ecr", Operation: "PutImage"}, engine.AuditAPIECR},
		{request.Info{Route: "admin"}, engine.AuditAPIAdmin},
		{request.Info{Route: "blob"}, engine.AuditAPIOCI},
	} {
		require.Equal(t, c.api, apiOf(&c.info))
	}

	// A record that cannot be written refuses the request.
	require.NoError(t, e.Close())
	require.ErrorIs(t, az.Authorize(rctx, alice, BatchGetImage, Repository("app")), engine.ErrClosed)
}

// TestChangeSyncs: an allowed change's record is synced while the change
// is made, for the request's answer to wait for (DeferAuditSyncs), or,
// under request.WithAuditSyncs (a pull-through cache's fill), for the
// background work that makes the change; reads and denials add no wait.
func TestChangeSyncs(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	all, err := engine.ParseIdentityPolicy("all", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},`+
		`{"Effect":"Deny","Action":"ecr:DeleteRepository","Resource":"*"}]}`)
	require.NoError(t, err)
	alice, err := engine.NewPrincipal("000000000000", "", "alice", engine.NewIdentityPolicies(all))
	require.NoError(t, err)
	az, err := NewIAM(e, IAMConfig{})
	require.NoError(t, err)
	newRequest := func() (*request.Info, context.Context) {
		info := &request.Info{RequestID: "r-1", Method: "GET", Path: "/v2/hub/app/manifests/v1", Route: "manifest"}
		info.DeferAuditSyncs()
		return info, request.WithInfo(ctx, info)
	}
	pending := func(s *request.AuditSyncs) bool { return s != nil && s.Pending() }

	info, rctx := newRequest()
	require.NoError(t, az.Authorize(rctx, alice, BatchGetImage, Repository("app")))
	require.False(t, pending(request.AuditSyncsOf(rctx)), "a read is not synced")
	require.ErrorIs(t, az.Authorize(rctx, alice, DeleteRepository, Repository("app")), engine.ErrAccessDenied)
	require.False(t, pending(request.AuditSyncsOf(rctx)), "a denial is synced before the seam answers")
	require.NoError(t, az.Authorize(rctx, alice, PutImage, Repository("app")))
	require.True(t, pending(request.AuditSyncsOf(rctx)), "a change: the answer waits")
	require.NoError(t, info.WaitAuditSyncs())

	_, rctx = newRequest()
	fill := new(request.AuditSyncs)
	fctx := request.WithAuditSyncs(rctx, fill)
	require.NoError(t, az.Authorize(fctx, alice, BatchImportUpstreamImage, Repository("hub/app")))
	require.True(t, fill.Pending(), "the fill's change: the fill waits")
	require.False(t, pending(request.AuditSyncsOf(rctx)), "the pull's answer does not wait for the fill's records")
	require.NoError(t, fill.Wait())
	require.False(t, fill.Pending())
}

// TestMutatingTable: every action the seam knows is classified, and the
// classification follows the action's name.
func TestMutatingTable(t *testing.T) {
	for a := range known {
		name := string(a)
		switch {
		case a == StartLifecyclePolicyPreview, a == ValidatePullThroughCacheRule, a == AdminPreviewLifecycle, a == AdminFsck, a == AdminReadAuditLog,
			a == AdminSimulatePolicy, a == AdminListEvents:
			require.False(t, Mutating(a), name)
		case a == AdminCollectGarbage, a == AdminApplyLifecycle, a == AdminReloadIdentities, a == AdminRedriveEvents, a == AdminImportVulnerabilities, a == AdminRollbackVulnerabilities:
			require.True(t, Mutating(a), name)
		default:
			_, op, _ := strings.Cut(name, ":")
			reads := false
			for _, p := range []string{"Describe", "Get", "List", "BatchGet", "BatchCheck"} {
				reads = reads || strings.HasPrefix(op, p)
			}
			require.Equal(t, !reads, Mutating(a), name)
		}
	}
}

// TestListing: a listing's questions are decided as Authorize decides
// them; a hidden repository is recorded as its own denial without a
// sync, a shown one only in the listing's one record, which counts both.
func TestListing(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	for _, name := range []string{"team-a/app", "team-a/lib", "team-b/app"} {
		_, err = e.CreateRepository(ctx, name, engine.RepositorySettings{})
		require.NoError(t, err)
	}
	teamA, err := engine.ParseIdentityPolicy("team-a", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:repository/team-a/*"}]}`)
	require.NoError(t, err)
	alice, err := engine.NewPrincipal("000000000000", "", "alice", engine.NewIdentityPolicies(teamA))
	require.NoError(t, err)
	az, err := NewIAM(e, IAMConfig{})
	require.NoError(t, err)

	syncs := e.AuditStatus().Syncs
	l := NewListing(az, alice, DescribeRepositories)
	seen, err := l.Visible(ctx, []Resource{Repository("team-a/app"), Repository("team-b/app"), Repository("team-a/lib")})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true}, seen, "hidden, not an error")
	require.Equal(t, 1, l.Hidden())
	require.NoError(t, l.Record(ctx, 2))
	require.Equal(t, syncs, e.AuditStatus().Syncs, "a listing is recorded without a sync")
	var recs []engine.AuditRecord
	require.NoError(t, e.AuditRecords(ctx, engine.AuditQuery{OldestFirst: true}, func(r engine.AuditRecord) error {
		recs = append(recs, r)
		return nil
	}))
	require.Len(t, recs, 2, "the refusal and the listing; a shown repository has no record of its own")
	require.Equal(t, "team-b/app", recs[0].Repository)
	require.Equal(t, engine.AuditImplicitDeny, recs[0].Decision)
	require.Equal(t, "arn:aws:iam::000000000000:user/alice", recs[0].PrincipalARN)
	require.Equal(t, "implicitly denied: no statement allows", recs[0].Statement)
	require.Contains(t, recs[0].ErrorMessage, "may not ecr:DescribeRepositories on arn:aws:ecr:us-east-1:000000000000:repository/team-b/app")
	require.Equal(t, engine.AuditAllow, recs[1].Decision)
	require.Equal(t, "*", recs[1].Resource)
	require.Equal(t, string(DescribeRepositories), recs[1].Action)
	require.Equal(t, map[string]string{"repositoriesShown": "2", "repositoriesHidden": "1"}, recs[1].Parameters)

	// The same question asked for itself (a refused attempt) is synced.
	require.ErrorIs(t, az.Authorize(ctx, alice, DescribeRepositories, Repository("team-b/app")), engine.ErrAccessDenied)
	require.Greater(t, e.AuditStatus().Syncs, syncs)
}
