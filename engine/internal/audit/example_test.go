package audit_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/berthstore/berth/engine/internal/audit"
)

// The engine opens the log in <data>/audit, the authorization seam
// appends a record for each decision (durable for a denial or a change)
// and refuses the request with 503 when the append fails, and the admin
// API and the CLI query and export it.
func Example() {
	data, _ := os.MkdirTemp("", "berth-example-")
	defer os.RemoveAll(data)
	clock := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	log, err := audit.Open(filepath.Join(data, "audit"), &audit.Options{
		Region:    "eu-west-1",
		AccountID: "123456789012",
		Now:       func() time.Time { return clock }, // a fixed clock for the example; the engine leaves Now nil
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer log.Close()

	// In the authorization seam, after engine.Authorize decided:
	for _, d := range []audit.Decision{audit.Allow, audit.ExplicitDeny} {
		rec := audit.Record{
			RequestID:     "req-1",
			PrincipalARN:  "arn:aws:iam::123456789012:user/alice",
			Account:       "123456789012",
			UserName:      "alice",
			UserID:        "AIDAEXAMPLEALICE00000",
			PrincipalType: audit.PrincipalIAMUser,
			SourceIP:      "192.0.2.10",
			UserAgent:     "containerd/2.0.0",
			Action:        "ecr:PutImage",
			Resource:      "arn:aws:ecr:eu-west-1:123456789012:repository/app",
			Repository:    "app",
			Decision:      d,
			API:           audit.APIOCI,
			Method:        "PUT",
			Path:          "/v2/app/manifests/v1",
		}
		if d == audit.ExplicitDeny {
			rec.Statement = `repository policy "repository/app" statement 1 (Sid "NoPush")`
		}
		mutating := d == audit.Allow // the push went through
		if err := log.Append(rec, d.Denied() || mutating); err != nil {
			fmt.Println("503:", err) // refuse the request: it could not be recorded
			return
		}
	}

	// GET /admin/v1/audit?decision=Deny&repository=app
	err = log.Records(context.Background(), audit.Query{Repository: "app", Decision: audit.AnyDenial, Limit: 50},
		func(r audit.Record) error {
			fmt.Println(r.Time.Format(time.RFC3339), r.UserName, r.Action, r.Decision, r.ErrorCode, r.Statement)
			return nil
		})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// 2026-11-23T10:00:00Z alice ecr:PutImage ExplicitDeny AccessDenied repository policy "repository/app" statement 1 (Sid "NoPush")
}
