package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStart starts a server, makes a database, and restarts the server
// with its data kept.
func TestStart(t *testing.T) {
	bin, ok := Find()
	if !ok {
		// internal/testenv's rule, which a leaf cannot import: under CI a
		// missing prerequisite fails.
		if os.Getenv("CI") == "true" || os.Getenv("BERTH_REQUIRE_ALL") == "1" {
			t.Fatalf("missing test prerequisite: PostgreSQL (%s)", InstallCommand)
		}
		t.Skipf("missing test prerequisite: PostgreSQL (%s)", InstallCommand)
	}
	s := Start(t, bin)
	url := s.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	s.Restart(t)
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var x int
	if err := conn.QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 7 {
		t.Fatalf("after restart: %d, %v", x, err)
	}
}
