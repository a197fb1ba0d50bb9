package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestScanDB: import a directory of OSV records, see it in the status,
// refuse a corrupt file with the previous version still current, import
// a second version and roll back to the first.
func TestScanDB(t *testing.T) {
	dir := t.TempDir()
	osv := filepath.Join("..", "..", "scan", "testdata", "osv")

	code, out, errOut := run(t, "", "scan", "db", "status", "--data", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "current: none")

	code, out, errOut = run(t, "", "scan", "db", "import", "--data", dir, filepath.Join(osv, "transcribed"))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "imported version 1: 3 records")
	require.Contains(t, out, "Debian:12")

	bad := filepath.Join(t.TempDir(), "Debian.zip")
	require.NoError(t, os.WriteFile(bad, []byte("not a zip"), 0o644))
	code, _, errOut = run(t, "", "scan", "db", "import", "--data", dir, bad)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "vulnerability data refused")
	require.Contains(t, errOut, "Debian.zip")

	code, out, errOut = run(t, "", "scan", "db", "status", "--data", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "current: version 1,")
	require.Contains(t, out, "previous: none")

	code, out, errOut = run(t, "", "scan", "db", "import", "--data", dir, osv)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "imported version 2: 15 records")

	code, out, errOut = run(t, "", "scan", "db", "rollback", "--data", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "rolled back to version 1")
	code, _, errOut = run(t, "", "scan", "db", "rollback", "--data", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no previous version")

	code, _, _ = run(t, "", "scan", "db", "frob", "--data", dir)
	require.Equal(t, 2, code)
}
