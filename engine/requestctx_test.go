package engine

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCancelledRequestCancelsItsSQL: with the metadata in PostgreSQL, the
// request paths pass their context down to SQL. While another transaction
// holds the index's table locked, a manifest HEAD and GET, a blob HEAD
// and GET, a tag list, an upload's commit and a manifest PUT each return
// with their context's error once it ends (not when the lock goes), and
// the server cancelled their statement (a cancel request reached it: the
// error is PostgreSQL's query_canceled, not only the client's timeout). A
// push given up wrote nothing; once the lock is gone every request
// answers.
func TestCancelledRequestCancelsItsSQL(t *testing.T) {
	pg := testPostgres(t)
	ctx := context.Background()
	url := pg.NewDatabase(t)
	e, err := Open(t.TempDir(), &Options{CreateOnPush: true, Logger: quietOptions().Logger, Metadata: url})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	layer := rnd(10 << 10)
	_, payload := pushImage(t, e, "team/app", "v1", layer)
	ld := digest.FromBytes(layer)
	pending := rnd(1000)
	up, err := e.BeginUpload(ctx, "team/app")
	require.NoError(t, err)
	_, err = up.Write(pending)
	require.NoError(t, err)
	require.NoError(t, up.Checkpoint(ctx))
	require.NoError(t, up.Close())

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) }) // before the engine's Close, which may read
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE berth_kv IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	requests := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"manifest HEAD", func(ctx context.Context) error { _, err := e.StatManifest(ctx, "team/app", "v1"); return err }},
		{"manifest GET", func(ctx context.Context) error { _, err := e.GetManifest(ctx, "team/app", "v1"); return err }},
		{"blob HEAD", func(ctx context.Context) error { _, err := e.StatBlob(ctx, "team/app", ld); return err }},
		{"blob GET", func(ctx context.Context) error {
			r, err := e.OpenBlob(ctx, "team/app", ld)
			if err == nil {
				r.Close()
			}
			return err
		}},
		{"tag list", func(ctx context.Context) error { _, err := e.ListTags(ctx, "team/app", "", 100); return err }},
		{"manifest PUT", func(ctx context.Context) error {
			_, err := e.PutManifest(ctx, "team/app", "v2", "application/vnd.oci.image.manifest.v1+json", payload)
			return err
		}},
		{"upload commit", func(ctx context.Context) error {
			up, err := e.ResumeUpload(ctx, "team/app", up.ID())
			if err != nil {
				return err
			}
			_, err = up.Commit(ctx, digest.FromBytes(pending), int64(len(pending)))
			return err
		}},
	}
	for _, r := range requests {
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		err := r.do(rctx)
		cancel()
		took := time.Since(start)
		require.ErrorIs(t, err, context.DeadlineExceeded, r.name)
		var pe *pgconn.PgError
		require.ErrorAs(t, err, &pe, "%s: the server was asked to cancel the statement", r.name)
		assert.Equal(t, "57014", pe.Code, // query_canceled
			"%s: the server cancelled the statement", r.name)
		assert.Less(t, took, 5*time.Second, "%s returns when its context ends (not when the lock goes)", r.name)
	}
	require.NoError(t, tx.Rollback(ctx))

	_, err = e.StatManifest(ctx, "team/app", "v2")
	require.ErrorIs(t, err, ErrManifestUnknown, "the manifest PUT given up wrote nothing")
	_, err = e.StatBlob(ctx, "team/app", digest.FromBytes(pending))
	require.ErrorIs(t, err, ErrBlobUnknown, "the upload commit given up wrote nothing")
	for _, r := range requests[:5] {
		require.NoError(t, r.do(ctx), "%s after the lock", r.name)
	}
	res, err := e.PutManifest(ctx, "team/app", "v2", "application/vnd.oci.image.manifest.v1+json", payload)
	require.NoError(t, err)
	assert.Equal(t, digest.FromBytes(payload), res.Digest)
	d, err := e.PutBlob(ctx, "team/app", bytes.NewReader(pending), digest.FromBytes(pending))
	require.NoError(t, err)
	assert.Equal(t, digest.FromBytes(pending), d.Digest)
}
