package engine

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/pgtest"
)

// TestMissingKeyringRefusedOnPostgres: a store whose index is in
// PostgreSQL (no index directory in the store's directory) that lost its
// keyring is refused with ErrKeyringMissing, and no new keyring is made;
// restoring the keyring opens it; a new store on an empty database gets
// its keyring.
func TestMissingKeyringRefusedOnPostgres(t *testing.T) {
	bin := pgtest.Require(t)
	pg := pgtest.Start(t, bin)
	ctx := context.Background()
	dir := t.TempDir()
	o := Options{Logger: quietOptions().Logger, Metadata: pg.NewDatabase(t)}
	e, err := Open(dir, &o)
	require.NoError(t, err)
	_, err = e.CreateRepository(ctx, "team/app", RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.Close())

	keyring := filepath.Join(dir, "keyring.json")
	saved, err := os.ReadFile(keyring)
	require.NoError(t, err)
	require.NoError(t, os.Remove(keyring))
	_, err = Open(dir, &o)
	require.ErrorIs(t, err, ErrKeyringMissing)
	require.Contains(t, err.Error(), "metadata database")
	_, err = os.Stat(keyring)
	require.ErrorIs(t, err, fs.ErrNotExist, "no new keyring")

	require.NoError(t, os.WriteFile(keyring, saved, 0o600))
	e, err = Open(dir, &o)
	require.NoError(t, err)
	_, err = e.Repository(ctx, "team/app")
	require.NoError(t, err)
	require.NoError(t, e.Close())

	fresh := Options{Logger: quietOptions().Logger, Metadata: pg.NewDatabase(t)}
	e, err = Open(t.TempDir(), &fresh)
	require.NoError(t, err, "a new store on an empty database")
	require.NoError(t, e.Close())
}
