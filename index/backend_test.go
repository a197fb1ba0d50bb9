package index

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/pgtest"
)

// The index's tests run over pebble; with BERTH_INDEX_BACKEND=postgres
// the tests of the typed API (every test that opens its DB with
// openTest) run over PostgreSQL instead, on a server TestMain starts:
//
//	BERTH_INDEX_BACKEND=postgres go test ./index
//
// TestKVConformance runs over both in every run.

// pgServer is the server of a BERTH_INDEX_BACKEND=postgres run.
var pgServer *pgtest.Server

func TestMain(m *testing.M) {
	if os.Getenv("BERTH_INDEX_BACKEND") == "postgres" {
		bin, ok := pgtest.Find()
		if !ok {
			fmt.Fprintf(os.Stderr, "BERTH_INDEX_BACKEND=postgres: PostgreSQL is not installed (%s)\n", pgtest.InstallCommand)
			os.Exit(2)
		}
		s, err := pgtest.New(bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "BERTH_INDEX_BACKEND=postgres: %v\n", err)
			os.Exit(2)
		}
		pgServer = s
		code := m.Run()
		s.Close()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// openPostgres opens an index on a fresh database of srv.
func openPostgres(t testing.TB, srv *pgtest.Server) *DB {
	t.Helper()
	db, err := OpenPostgres(context.Background(), srv.NewDatabase(t), &Options{Logger: testLogger(t)}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// startPostgres starts a PostgreSQL server for t (testenv: a skip on a
// developer's machine without one, a failure under CI).
func startPostgres(t *testing.T) *pgtest.Server {
	t.Helper()
	if pgServer != nil {
		return pgServer
	}
	bin := pgtest.Require(t)
	return pgtest.Start(t, bin)
}
