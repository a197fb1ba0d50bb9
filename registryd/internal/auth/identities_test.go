package auth

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// decide asks a fresh engine whether who may perform action on repo
// ("" for a registry-level action).
func decide(t *testing.T, who engine.Principal, action, repo string) engine.Decision {
	t.Helper()
	e, err := engine.Open(t.TempDir(), &engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	defer e.Close()
	d, err := e.Authorize(context.Background(), &engine.AccessRequest{Principal: who, Action: action, Repository: repo})
	require.NoError(t, err)
	return d
}

// TestIdentityFile: the YAML and JSON forms, each user's principal with
// its own and its groups' policies, and the summary.
func TestIdentityFile(t *testing.T) {
	ids, err := LoadIdentities("testdata/iam.yaml")
	require.NoError(t, err)
	alice, err := ids.Principal("000000000000", "alice")
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:iam::000000000000:user/alice", alice.ARN())
	bob, err := ids.Principal("000000000000", "bob")
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:iam::000000000000:user/team-a/bob", bob.ARN(), "the IAM path")
	root, err := ids.Principal("000000000000", "root")
	require.NoError(t, err)
	carol, err := ids.Principal("000000000000", "carol")
	require.NoError(t, err)
	eve, err := ids.Principal("000000000000", "eve") // not in the file
	require.NoError(t, err)
	anon, err := ids.Principal("000000000000", "")
	require.NoError(t, err)
	assert.True(t, anon.Anonymous())

	for _, tc := range []struct {
		who          engine.Principal
		action, repo string
		want         engine.Outcome
		reason       string
	}{
		{alice, "ecr:PutImage", "team-a/app", engine.Allow, `identity policy "team-a-rw" statement 0`},
		{alice, "ecr:PutImage", "team-b/app", engine.ImplicitDeny, "no statement allows"},
		{alice, "ecr:GetAuthorizationToken", "", engine.Allow, `"team-a-rw" statement 1`},
		{bob, "ecr:BatchGetImage", "team-b/app", engine.Allow, `identity policy "read-all"`},
		{bob, "ecr:PutImage", "team-b/app", engine.ImplicitDeny, ""},
		{root, "berth:CollectGarbage", "", engine.Allow, `"admin"`},
		{carol, "ecr:BatchGetImage", "team-a/app", engine.ImplicitDeny, "" /* listed, no policy */},
		{eve, "ecr:BatchGetImage", "team-a/app", engine.ImplicitDeny, "" /* not listed: nothing */},
	} {
		d := decide(t, tc.who, tc.action, tc.repo)
		assert.Equal(t, tc.want, d.Outcome, "%s %s %s: %s", tc.who.User, tc.action, tc.repo, d.Reason())
		assert.Contains(t, d.Reason(), tc.reason)
	}

	s := ids.Summary()
	assert.Equal(t, "testdata/iam.yaml", s.Source)
	assert.Equal(t, []PolicySummary{{"admin", 1}, {"read-all", 1}, {"team-a-rw", 2}}, s.Policies)
	require.Len(t, s.Users, 4)
	assert.Equal(t, UserSummary{Name: "bob", Path: "/team-a/", Groups: []string{"team-a"}, Policies: []HeldPolicy{
		{Name: "read-all", Via: "user", Statements: 1}, {Name: "team-a-rw", Via: "group/team-a", Statements: 2}}}, s.Users[1])
	assert.Equal(t, UserSummary{Name: "carol", Path: "/", Groups: []string{}, Policies: []HeldPolicy{}}, s.Users[2])

	j, err := LoadIdentities("testdata/iam.json")
	require.NoError(t, err)
	dora, err := j.Principal("000000000000", "dora")
	require.NoError(t, err)
	assert.Equal(t, engine.Allow, decide(t, dora, "ecr:DeleteRepository", "team-b/x").Outcome)
	assert.Equal(t, engine.ImplicitDeny, decide(t, dora, "ecr:DeleteRepository", "team-a/x").Outcome)
}

// TestDefaultIdentities: without an identity file every user is an
// administrator, and an anonymous caller holds nothing.
func TestDefaultIdentities(t *testing.T) {
	ids := DefaultIdentities()
	eve, err := ids.Principal("000000000000", "eve")
	require.NoError(t, err)
	assert.Equal(t, engine.Allow, decide(t, eve, "ecr:DeleteRepository", "any").Outcome)
	anon, err := ids.Principal("000000000000", "")
	require.NoError(t, err)
	assert.Equal(t, engine.ImplicitDeny, decide(t, anon, "ecr:BatchGetImage", "any").Outcome)
}

// TestIdentityFileRefused: every problem of a file is named (the file,
// the user, group or policy, and the engine's message), all at once.
func TestIdentityFileRefused(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"unknown group", "users: {alice: {groups: [nope]}}", []string{`user "alice": group "nope" is not defined`}},
		{"unknown policy of a user", "users: {alice: {policies: [nope]}}", []string{`user "alice": policy "nope" is not defined`}},
		{"unknown policy of a group", "groups: {g: {policies: [nope]}}", []string{`group "g": policy "nope" is not defined`}},
		{"group listed twice", "groups: {g: {}}\nusers: {alice: {groups: [g, g]}}", []string{`user "alice": group "g" listed twice`}},
		{"duplicate user", "users:\n  alice: {}\n  alice: {}\n", []string{`mapping key "alice" already defined`}},
		{"duplicate policy", "policies:\n  p: {}\n  p: {}\n", []string{`mapping key "p" already defined`}},
		{"duplicate key in a policy", "policies:\n  p: {Version: '2012-10-17', Version: '2012-10-17'}\n", []string{`mapping key "Version" already defined`}},
		{"invalid policy", `policies: {p: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: "ecr:Nope", Resource: "*"}]}}`,
			[]string{`policy "p":`, "ecr:Nope"}},
		{"policy with a Principal", `policies: {p: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: "*", Action: "ecr:*", Resource: "*"}]}}`,
			[]string{`policy "p":`, "Principal"}},
		{"policy string not JSON", `policies: {p: "{nope"}`, []string{`policy "p": line 1: the policy string is not JSON`}},
		{"policy a list", `policies: {p: [1]}`, []string{`policy "p": line 1: want a policy document`}},
		{"bad user name", `users: {"al ice": {}}`, []string{`user "al ice": want 1 to 64`}},
		{"user AWS", `users: {AWS: {}}`, []string{`user "AWS": the user name of login tokens`}},
		{"bad path", `users: {alice: {path: "no-slashes"}}`, []string{`user "alice": path "no-slashes"`}},
		{"unknown field", "users: {alice: {group: [x]}}", []string{"field group not found"}},
		{"unknown top-level field", "roles: {}", []string{"field roles not found"}},
		{"every problem at once", "groups: {g: {policies: [p1]}}\nusers: {alice: {groups: [h]}, bob: {policies: [p2]}}",
			[]string{`group "g": policy "p1"`, `user "alice": group "h"`, `user "bob": policy "p2"`}},
		{"not YAML", "users: [", []string{"iam.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "iam.yaml")
			require.NoError(t, os.WriteFile(p, []byte(tc.text), 0o600))
			_, err := LoadIdentities(p)
			require.ErrorIs(t, err, ErrIdentities)
			assert.Contains(t, err.Error(), p, "the file is named")
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			t.Log(err)
		})
	}
	_, err := LoadIdentities(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, ErrIdentities)
	// An empty file is a valid file that lists nobody.
	ids, err := ParseIdentities("empty", nil)
	require.NoError(t, err)
	assert.Empty(t, ids.Summary().Users)
}

// TestReload: the files are read again and swapped in at once; a removed
// user stops working (password and login token), a changed policy
// applies; a bad file keeps the previous set.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	htpasswd := htpasswdFile(t, "alice", "bob")
	iamFile := filepath.Join(dir, "iam.yaml")
	writeIAM := func(text string) { require.NoError(t, os.WriteFile(iamFile, []byte(text), 0o600)) }
	writeIAM(`
policies:
  pull: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: ecr:BatchGetImage, Resource: "*"}]}
users: {alice: {policies: [pull]}, bob: {policies: [pull]}}
`)
	var log strings.Builder
	a, err := New(Config{Account: "000000000000", HtpasswdFile: htpasswd, IdentityFile: iamFile,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	require.NoError(t, err)
	bobToken, _ := a.MintLoginToken("bob")
	alice, err := a.Basic(basicRequest("GET", "alice", "pw"), false)
	require.NoError(t, err)
	assert.Equal(t, engine.Allow, decide(t, alice, "ecr:BatchGetImage", "r").Outcome)
	assert.Equal(t, engine.ImplicitDeny, decide(t, alice, "ecr:PutImage", "r").Outcome)

	// Bob leaves, alice may push.
	require.NoError(t, os.WriteFile(htpasswd, []byte(strings.Split(mustRead(t, htpasswd), "\n")[0]+"\n"), 0o600))
	writeIAM(`
policies:
  push: {Version: "2012-10-17", Statement: [{Effect: Allow, Action: [ecr:BatchGetImage, ecr:PutImage], Resource: "*"}]}
users: {alice: {policies: [push]}}
`)
	s, err := a.Reload()
	require.NoError(t, err)
	assert.Len(t, s.Users, 1)
	_, err = a.Basic(basicRequest("GET", "bob", "pw"), false)
	require.ErrorIs(t, err, ErrUnauthenticated, "a removed user's password stops working")
	_, err = a.Basic(basicRequest("GET", LoginUser, bobToken), false)
	require.ErrorIs(t, err, ErrUnauthenticated, "and so does a removed user's login token")
	alice, err = a.Basic(basicRequest("GET", "alice", "pw"), false)
	require.NoError(t, err)
	assert.Equal(t, engine.Allow, decide(t, alice, "ecr:PutImage", "r").Outcome, "the new policy applies")
	assert.Contains(t, log.String(), "identities reloaded")

	// A bad file keeps the set in force.
	writeIAM("users: {alice: {policies: [gone]}}")
	_, err = a.Reload()
	require.ErrorIs(t, err, ErrIdentities)
	alice, err = a.Basic(basicRequest("GET", "alice", "pw"), false)
	require.NoError(t, err)
	assert.Equal(t, engine.Allow, decide(t, alice, "ecr:PutImage", "r").Outcome)
	assert.Contains(t, log.String(), "the previous ones stay in force")
	require.NoError(t, os.WriteFile(htpasswd, []byte("AWS:x\n"), 0o600))
	_, err = a.Reload()
	require.ErrorIs(t, err, ErrHtpasswd)

	open, err := New(Config{Account: "000000000000"})
	require.NoError(t, err)
	_, err = open.Reload()
	require.ErrorIs(t, err, ErrNoIdentityFile)
}

// mustRead is the text of the file at p.
func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}
