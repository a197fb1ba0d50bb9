package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/policy"
)

func TestCheckRepositoryPolicyFollowsChanges(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	alice := Principal{Account: "000000000000", User: "alice"}
	bob := Principal{Account: "000000000000", User: "bob"}
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"), "no repository, no policy")
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"))
	deny := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}}`
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", deny))
	err = e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage")
	require.ErrorIs(t, err, ErrAccessDenied, "the cache follows the change")
	assert.Contains(t, err.Error(), "arn:aws:iam::000000000000:user/bob may not ecr:PutImage on repository r")
	require.NoError(t, e.CheckRepositoryPolicy(ctx, alice, "r", "ecr:PutImage"))
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:BatchGetImage"))
	require.ErrorIs(t, e.SetRepositoryPolicy(ctx, "r", `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","NotAction":"ecr:*"}}`),
		ErrInvalidArgument, "a policy Berth cannot enforce is refused")
	_, err = e.DeleteRepositoryPolicy(ctx, "r")
	require.NoError(t, err)
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"))
	require.NoError(t, e.SetRepositoryPolicy(ctx, "r", deny))
	require.ErrorIs(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"), ErrAccessDenied)
	require.NoError(t, e.DeleteRepository(ctx, "r", true))
	_, err = e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage"), "a repository created again starts without its predecessor's policy")
}

// A policy stored before Berth enforced policies, which it cannot
// enforce, denies everything but replacing it.
func TestCheckRepositoryPolicyStoredUnenforceable(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	alice := Principal{Account: "000000000000", User: "alice"}
	_, err := e.CreateRepository(ctx, "old", RepositorySettings{})
	require.NoError(t, err)
	r, err := e.loadRepo("old")
	require.NoError(t, err)
	r.RepositoryPolicy = `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`
	b := e.db.NewBatch()
	require.NoError(t, e.putRepo(b, &r.Repository))
	require.NoError(t, b.Commit(true))
	b.Close()
	_, err = e.repositoryPolicy("old")
	require.ErrorIs(t, err, policy.ErrInvalid)
	err = e.CheckRepositoryPolicy(ctx, alice, "old", "ecr:BatchGetImage")
	require.ErrorIs(t, err, ErrAccessDenied)
	assert.Contains(t, err.Error(), "Condition")
	require.NoError(t, e.CheckRepositoryPolicy(ctx, alice, "old", "ecr:DeleteRepositoryPolicy"))
	_, err = e.DeleteRepositoryPolicy(ctx, "old")
	require.NoError(t, err, "it can be removed")
	require.NoError(t, e.CheckRepositoryPolicy(ctx, alice, "old", "ecr:BatchGetImage"))
}

// Checks racing with policy changes never keep a stale policy: once the
// changes stop, the check answers the last one committed.
func TestCheckRepositoryPolicyRacingChanges(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	bob := Principal{Account: "000000000000", User: "bob"}
	_, err := e.CreateRepository(ctx, "r", RepositorySettings{})
	require.NoError(t, err)
	deny := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}}`
	allow := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage"}}`
	for round := range 20 {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						_ = e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage")
					}
				}
			}()
		}
		for i := range 5 {
			text := allow
			if (i+round)%2 == 0 {
				text = deny
			}
			require.NoError(t, e.SetRepositoryPolicy(ctx, "r", text))
		}
		last := allow
		if (4+round)%2 == 0 {
			last = deny
		}
		close(stop)
		wg.Wait()
		err := e.CheckRepositoryPolicy(ctx, bob, "r", "ecr:PutImage")
		if last == deny {
			require.ErrorIs(t, err, ErrAccessDenied, "round %d", round)
		} else {
			require.NoError(t, err, "round %d", round)
		}
	}
}
