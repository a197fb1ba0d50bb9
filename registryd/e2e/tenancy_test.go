package e2e

import (
	"flag"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTenancy is the hostile-tenant suite: one registry shared by an
// administrator, two teams, a reader and an outsider (newTenancy), the
// attempts each may not make (refused with the exact OCI or AWS answer,
// the store unchanged), the grants that must work, and the audit log of
// every refusal.
func TestTenancy(t *testing.T) {
	f := newTenancy(t)

	t.Run("refused", func(t *testing.T) {
		t.Run("oci routes", func(t *testing.T) { f.refuse(t, f.ociRefusals()) })
		t.Run("ecr operations", func(t *testing.T) { f.refuse(t, f.ecrRefusals()) })
		t.Run("registry level", func(t *testing.T) { f.refuse(t, f.registryRefusals()) })
		t.Run("admin api", func(t *testing.T) { f.refuse(t, f.adminRefusals()) })
		t.Run("defects", func(t *testing.T) { f.refuse(t, f.defectRefusals()) })
		t.Run("oracles", func(t *testing.T) {
			f.refuse(t, f.oracleRefusals())
			f.checkOracles(t)
		})
		// eve leaves: she is removed from the files and the identities are
		// reloaded; her password, key and token stop working.
		f.writeIdentities([]string{"admin", "alice", "bob", "carol", "dave", "mallory", "frank"}, tnIdentityFile[:len(tnIdentityFile)-len("  eve: {groups: [team-a]}\n")])
		status, _, body := f.do("admin", http.MethodPost, "/admin/v1/iam/reload", nil, nil)
		require.Equal(t, http.StatusOK, status, "%s", body)
		t.Run("credentials", func(t *testing.T) { f.refuse(t, f.credentialRefusals()) })
	})
	t.Run("allowed", func(t *testing.T) { f.grant(t, f.grants()) })
	t.Run("refused after the grants", func(t *testing.T) { f.refuse(t, f.plantedRefusals()) })
	t.Run("shredding", f.shredding)
	t.Run("audit", f.checkAudit)
	t.Run("stolen disk", f.stolenDisk)

	t.Logf("refused: %d attempts; allowed: %d grants", len(f.outcomes), f.granted)
	if run := flag.Lookup("test.run"); run != nil && strings.Contains(run.Value.String(), "/") {
		return // -run picked some of the subtests: the totals are the whole suite's
	}
	require.GreaterOrEqual(t, len(f.outcomes), 60, "refused attempts")
	require.GreaterOrEqual(t, f.granted, 60, "grants")
}
