package authz

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// TestStatementTexts: the memo answers what Decision.Reason says, behind
// the prefix; decisions of one statement on different repositories share
// a text, other statements have their own, and the memo stays bounded.
func TestStatementTexts(t *testing.T) {
	ctx := context.Background()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	pull, err := engine.ParseIdentityPolicy("pull", `{"Version":"2012-10-17","Statement":[
		{"Sid":"Secret","Effect":"Deny","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:repository/secret/*"},
		{"Sid":"Pull","Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"}]}`)
	require.NoError(t, err)
	alice, err := engine.NewPrincipal("000000000000", "", "alice", engine.NewIdentityPolicies(pull))
	require.NoError(t, err)
	decide := func(repo string) engine.Decision {
		d, err := e.Authorize(ctx, &engine.AccessRequest{Principal: alice, Action: "ecr:BatchGetImage", Repository: repo})
		require.NoError(t, err)
		return d
	}
	var s statementTexts
	a, b, secret := decide("team/a"), decide("team/b"), decide("secret/x")
	require.NotEqual(t, a.Resource, b.Resource)
	for _, d := range []engine.Decision{a, b, secret, a, secret} {
		assert.Equal(t, d.Reason(), s.text("", d))
		assert.Equal(t, "why: "+d.Reason(), s.text("why: ", d))
	}
	assert.Contains(t, s.text("", a), `Sid "Pull"`)
	assert.Contains(t, s.text("", secret), `Sid "Secret"`)
	assert.Equal(t, 4, s.len(), "one text per statement and prefix, whatever the repository")
	for i := range maxStatementTexts + 10 {
		prefix := fmt.Sprintf("%d: ", i)
		require.Equal(t, prefix+a.Reason(), s.text(prefix, a))
	}
	assert.LessOrEqual(t, s.len(), maxStatementTexts)
}
