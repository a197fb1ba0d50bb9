package index

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/pgtest"
)

// TestPostgresDownIsUnavailable: while the database server is down, reads
// and commits fail with ErrUnavailable (which registryd answers with 503
// and Retry-After), not an error of the statement; once it is back, the
// same calls succeed, and a missing record is ErrNotFound again.
func TestPostgresDownIsUnavailable(t *testing.T) {
	bin := pgtest.Require(t)
	srv := pgtest.Start(t, bin) // its own: this test stops it
	db := openPostgres(t, srv)
	put := func() error {
		b := db.NewBatch()
		defer b.Close()
		if err := b.PutRepository(&Repository{Name: "app", CreatedAt: time.Unix(1, 0)}); err != nil {
			return err
		}
		return b.Commit(true)
	}
	require.NoError(t, put())

	srv.Stop()
	_, err := db.Repository("app")
	require.ErrorIs(t, err, ErrUnavailable, "a read while the server is down")
	require.ErrorIs(t, put(), ErrUnavailable, "a commit while the server is down")
	_, err = db.Repository("other")
	require.ErrorIs(t, err, ErrUnavailable, "not ErrNotFound: nothing can be told")

	srv.Resume(t)
	require.Eventually(t, func() bool { return put() == nil }, 30*time.Second, 50*time.Millisecond, "commits again once the server is back")
	_, err = db.Repository("app")
	require.NoError(t, err)
	_, err = db.Repository("other")
	require.ErrorIs(t, err, ErrNotFound)
}
