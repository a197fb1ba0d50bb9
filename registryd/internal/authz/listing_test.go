package authz

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// TestListingAsAuthorize: a listing shows what Authorize allows and
// records each refusal as Authorize records it (decision, statement,
// message, caller), for a closed registry, an open one and one with
// anonymous pulls, for users, the anonymous caller and a local user.
func TestListingAsAuthorize(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	denyBob := `{"Version":"2012-10-17","Statement":{"Sid":"NoBob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:*"}}`
	public := `{"Version":"2012-10-17","Statement":{"Sid":"Public","Effect":"Allow","Principal":"*","Action":"ecr:DescribeRepositories"}}`
	repos := map[string]string{"team-a/app": "", "team-a/secret": denyBob, "team-b/app": "", "public/base": public}
	var names []string
	for name, policy := range repos {
		_, err = e.CreateRepository(ctx, name, engine.RepositorySettings{ResourceTags: []engine.ResourceTag{{Key: "team", Value: name[:6]}}})
		require.NoError(t, err)
		if policy != "" {
			require.NoError(t, e.SetRepositoryPolicy(ctx, name, policy))
		}
		names = append(names, name)
	}
	names = append(names, "no/such")
	identity := func(name, text string) engine.Principal {
		p, err := engine.ParseIdentityPolicy(name, text)
		require.NoError(t, err)
		who, err := engine.NewPrincipal("000000000000", "", name, engine.NewIdentityPolicies(p))
		require.NoError(t, err)
		return who
	}
	callers := map[string]engine.Principal{
		"alice":     identity("alice", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"ecr:ResourceTag/team":"team-a"}}}]}`),
		"bob":       identity("bob", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`),
		"anonymous": {},
		"local":     engine.LocalPrincipal("stranger", 4242),
	}
	configs := map[string]IAMConfig{"closed": {}, "open": {Open: true}, "anonymous pull": {AnonymousPull: true}}
	type seen struct {
		repo, statement, message, arn string
		decision                      engine.AuditDecision
	}
	read := func(since int) []seen {
		var out []seen
		n := 0
		require.NoError(t, e.AuditRecords(ctx, engine.AuditQuery{OldestFirst: true}, func(r engine.AuditRecord) error {
			if n++; n > since && r.Decision.Denied() {
				out = append(out, seen{r.Repository, r.Statement, r.ErrorMessage, r.PrincipalARN, r.Decision})
			}
			return nil
		}))
		return out
	}
	count := func() int { return len(readAll(t, e)) }
	shown, hidden := 0, 0
	for cfgName, cfg := range configs {
		az, err := NewIAM(e, cfg)
		require.NoError(t, err)
		for whoName, who := range callers {
			for _, action := range []Action{DescribeRepositories, BatchGetImage} {
				name := fmt.Sprintf("%s/%s/%s", cfgName, whoName, action)
				resources := make([]Resource, len(names))
				for i, n := range names {
					resources[i] = Repository(n)
				}
				before := count()
				l := NewListing(az, who, action)
				visible, err := l.Visible(ctx, resources)
				require.NoError(t, err, name)
				listed := read(before)
				require.Len(t, listed, l.Hidden(), name)
				hidden += l.Hidden()
				shown += len(names) - l.Hidden()
				before = count()
				for i, n := range names {
					err := az.Authorize(ctx, who, action, Repository(n))
					if err != nil {
						require.ErrorIs(t, err, engine.ErrAccessDenied, name)
					}
					require.Equal(t, err == nil, visible[i], "%s %s", name, n)
				}
				require.Equal(t, read(before), listed, name)
			}
		}
	}
	require.NotZero(t, shown, "the table shows some")
	require.NotZero(t, hidden, "the table hides some")
}

// readAll returns every record of e's log, oldest first.
func readAll(t *testing.T, e *engine.Engine) []engine.AuditRecord {
	t.Helper()
	var out []engine.AuditRecord
	require.NoError(t, e.AuditRecords(context.Background(), engine.AuditQuery{OldestFirst: true}, func(r engine.AuditRecord) error {
		out = append(out, r)
		return nil
	}))
	return out
}
