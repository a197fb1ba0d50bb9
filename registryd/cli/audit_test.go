package cli

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// decodeLines decodes CloudTrail JSON lines.
func decodeLines(t *testing.T, out string) []engine.AuditRecord {
	t.Helper()
	var recs []engine.AuditRecord
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		r, err := engine.DecodeAuditRecord(sc.Bytes())
		require.NoError(t, err, "%q", sc.Text())
		recs = append(recs, r)
	}
	return recs
}

// TestLocalChangesRecorded: the commands that change a store no daemon
// holds record each change, as the operating system's user (type Local,
// source "local"), before making it; `registryd audit --data` reads
// them back as a table, JSON lines or an export, filtered.
func TestLocalChangesRecorded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	policy := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(policy, []byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`), 0o600))
	steps := []struct {
		args   []string
		action string
		res    string
	}{
		{[]string{"repo", "create", "--data", dir, "app"}, "ecr:CreateRepository", "repository/app"},
		{[]string{"repo", "create", "--data", dir, "gone"}, "ecr:CreateRepository", "repository/gone"},
		{[]string{"repo", "delete", "--data", dir, "gone"}, "ecr:DeleteRepository", "repository/gone"},
		{[]string{"template", "put", "--data", dir, "team"}, "ecr:CreateRepositoryCreationTemplate", "*"},
		{[]string{"template", "put", "--data", dir, "--description", "again", "team"}, "ecr:UpdateRepositoryCreationTemplate", "*"},
		{[]string{"template", "delete", "--data", dir, "team"}, "ecr:DeleteRepositoryCreationTemplate", "*"},
		{[]string{"keys", "create", "--data", dir, "k1"}, "kms:CreateKey", "key/k1"},
		{[]string{"keys", "disable", "--data", dir, "k1"}, "kms:DisableKey", "key/k1"},
		{[]string{"lifecycle", "apply", "--data", dir, "--repo", "app", "--policy", policy}, "berth:ApplyLifecycle", "repository/app"},
		{[]string{"gc", "--data", dir, "--dry-run"}, "berth:CollectGarbage", "*"},
	}
	for _, s := range steps {
		code, out, errOut := run(t, "", s.args...)
		require.Equal(t, 0, code, "%v: %s %s", s.args, out, errOut)
	}
	// Reading changes nothing and records nothing.
	for _, args := range [][]string{{"repo", "list", "--data", dir}, {"keys", "list", "--data", dir}, {"template", "list", "--data", dir}} {
		code, _, errOut := run(t, "", args...)
		require.Equal(t, 0, code, errOut)
	}

	code, out, errOut := run(t, "", "audit", "--data", dir, "--export")
	require.Equal(t, 0, code, errOut)
	recs := decodeLines(t, out)
	require.Len(t, recs, len(steps))
	me := osUser()
	for i, s := range steps {
		r := recs[i]
		assert.Equal(t, s.action, r.Action, "%v", s.args)
		assert.True(t, strings.HasSuffix(r.Resource, s.res), "%s: %s", s.action, r.Resource)
		assert.Equal(t, engine.AuditLocal, r.PrincipalType)
		assert.Equal(t, me, r.UserName)
		assert.Equal(t, "local", r.SourceIP)
		assert.Equal(t, engine.AuditAPICLI, r.API)
		assert.Equal(t, engine.AuditAllow, r.Decision)
		assert.Contains(t, r.Statement, "local command")
		words := s.args[:2] // "repo create", "keys disable", ...
		if s.args[0] == "gc" {
			words = s.args[:1]
		}
		assert.Equal(t, "registryd "+strings.Join(words, " "), r.UserAgent)
		assert.NotEmpty(t, r.RequestID)
	}
	assert.False(t, recs[len(recs)-1].Mutating, "a dry run changes nothing")
	assert.True(t, recs[0].Mutating)

	// The table, newest first.
	code, out, errOut = run(t, "", "audit", "--data", dir)
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, len(steps)+1)
	assert.Regexp(t, `^TIME\s+PRINCIPAL\s+ACTION\s+RESOURCE\s+DECISION\s+STATEMENT$`, lines[0])
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\s+local:`+me+`\s+berth:CollectGarbage\s+\*\s+Allow\s+allowed: a local command`, lines[1])
	assert.Contains(t, lines[len(lines)-1], "repository/app")

	// Filters.
	for _, c := range []struct {
		args []string
		n    int
	}{
		{[]string{"--repository", "gone"}, 2},
		{[]string{"--action", "kms:*"}, 2},
		{[]string{"--action", "ecr:*Template"}, 3},
		{[]string{"--principal", me}, len(steps)},
		{[]string{"--principal", "someone-else"}, 0},
		{[]string{"--decision", "Deny"}, 0},
		{[]string{"--decision", "allow"}, len(steps)},
		{[]string{"--since", "1h"}, len(steps)},
		{[]string{"--until", "2000-01-01"}, 0},
		{[]string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, 0},
		{[]string{"--limit", "3"}, 3},
	} {
		code, out, errOut := run(t, "", append([]string{"audit", "--data", dir, "--json"}, c.args...)...)
		require.Equal(t, 0, code, "%v: %s", c.args, errOut)
		assert.Len(t, decodeLines(t, out), c.n, "%v", c.args)
	}
	code, out, _ = run(t, "", "audit", "--data", dir, "--json", "--limit", "1")
	require.Equal(t, 0, code)
	assert.Equal(t, "berth:CollectGarbage", decodeLines(t, out)[0].Action, "newest first")

	for _, bad := range [][]string{
		{"--since", "yesterday"}, {"--decision", "Maybe"}, {"--limit", "-1"}, {"--json", "--export"},
		{"--since", "1h", "--until", "2h"}, {"extra"},
	} {
		code, _, errOut := run(t, "", append([]string{"audit", "--data", dir}, bad...)...)
		assert.Equal(t, 2, code, "%v: %s", bad, errOut)
	}

	// --no-audit: nothing recorded, nothing to read.
	code, _, errOut = run(t, "", "repo", "create", "--data", dir, "--no-audit", "quiet")
	require.Equal(t, 0, code, errOut)
	code, _, errOut = run(t, "", "audit", "--data", dir, "--no-audit")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "disabled")
	code, out, _ = run(t, "", "audit", "--data", dir, "--json", "--repository", "quiet")
	require.Equal(t, 0, code)
	assert.Empty(t, out)
}

// TestAuditServer: `registryd audit --server` asks a live daemon (GET
// /admin/v1/audit, with credentials) and prints its table or its lines;
// the daemon's start records the templates it puts; a query of the
// daemon's store (--data) goes to the daemon through its admin socket.
func TestAuditServer(t *testing.T) {
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	code, line, _ := run(t, "pw\n", "htpasswd", "--cost", "4", "admin")
	require.Equal(t, 0, code)
	require.NoError(t, os.WriteFile(htpasswd, []byte(line), 0o600))
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Data = filepath.Join(t.TempDir(), "store")
	cfg.AccessLog = false
	cfg.Htpasswd = htpasswd
	cfg.Templates = []Template{{Prefix: "team", AppliedFor: []string{engine.AppliedForCreateOnPush}}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, &cfg, slog.New(slog.DiscardHandler), ready) }()
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("serve did not start within a minute")
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	t.Setenv("BERTH_PASSWORD", "pw")
	code, out, errOut := run(t, "", "audit", "--server", "http://"+addr, "--username", "admin")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "berth:ReadAuditLog", "the query itself is recorded")
	assert.Regexp(t, `local:\S+\s+ecr:CreateRepositoryCreationTemplate\s+\*\s+Allow`, out, "serve's start records the template it puts")

	code, out, errOut = run(t, "pw", "audit", "--server", addr, "--username", "admin", "--password-stdin", "--export")
	require.Equal(t, 0, code, errOut)
	recs := decodeLines(t, out)
	require.Len(t, recs, 3)
	assert.Equal(t, "ecr:CreateRepositoryCreationTemplate", recs[0].Action, "oldest first")
	assert.Equal(t, "admin", recs[2].UserName)

	code, out, errOut = run(t, "", "audit", "--server", addr, "--username", "admin", "--json", "--action", "berth:*")
	require.Equal(t, 0, code, errOut)
	assert.Len(t, decodeLines(t, out), 3)

	t.Setenv("BERTH_PASSWORD", "wrong")
	code, _, errOut = run(t, "", "audit", "--server", addr, "--username", "admin")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "401")

	// The store is locked: the query goes to the daemon through its
	// admin socket, as the local user the kernel names.
	code, out, errOut = run(t, "", "audit", "--data", cfg.Data, "--action", "berth:ReadAuditLog")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `local:\S+\s+berth:ReadAuditLog\s+\*\s+Allow\s+allowed: local user`, out)
}
