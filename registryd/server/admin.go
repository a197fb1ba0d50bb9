package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
)

// adminPrefix is where the daemon's admin API lives: the operations the
// `registryd gc|fsck|lifecycle` commands run on a store no daemon holds,
// for the store this daemon holds. docs/registryd.md lists them.
const adminPrefix = "/admin/v1/"

// adminStore is what the admin API needs; *engine.Engine has it.
type adminStore interface {
	CollectGarbage(ctx context.Context, opts engine.GCOptions) (engine.GCReport, error)
	Fsck(ctx context.Context, opts engine.FsckOptions) (*engine.FsckReport, error)
	LifecyclePreview(ctx context.Context, repo, policyOverride string) ([]engine.Expiry, error)
	LifecycleApply(ctx context.Context, repo, policyOverride string) ([]engine.Expiry, error)
}

var _ adminStore = (*engine.Engine)(nil)

// maxPolicyBody bounds a lifecycle policy sent to the admin API (ECR's
// limit is 30,720 characters).
const maxPolicyBody = 64 << 10

// admin serves POST /admin/v1/{gc,fsck,lifecycle/preview,lifecycle/apply}.
// With authentication on it always needs credentials (anonymous pull
// does not open it).
func (s *Server) admin(w http.ResponseWriter, r *http.Request) error {
	st, ok := s.store.(adminStore)
	if !ok {
		return apiErr(CodeUnsupported, "this store has no admin operations", nil)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return apiErr(CodeUnsupported, "admin operations are POST requests", nil)
	}
	q := r.URL.Query()
	op := strings.TrimPrefix(r.URL.Path, adminPrefix)
	var out any
	var err error
	switch op {
	case "gc":
		var opts engine.GCOptions
		if opts.DryRun, err = boolParam(q.Get("dry-run")); err != nil {
			return err
		}
		if g := q.Get("grace"); g != "" {
			if opts.Grace, err = time.ParseDuration(g); err != nil || opts.Grace < 0 {
				return apiErr(CodeInvalidArgument, "grace: want a duration such as 1h", nil)
			}
			if opts.Grace == 0 {
				opts.Grace = -1 // zero given: no grace at all
			}
		}
		out, err = st.CollectGarbage(r.Context(), opts)
		if errors.Is(err, engine.ErrGCRunning) {
			return apiErr(CodeTooManyRequests, "a collection is running", nil)
		}
	case "fsck":
		var opts engine.FsckOptions
		if opts.Verify, err = boolParam(q.Get("verify")); err != nil {
			return err
		}
		if v := q.Get("sample"); v != "" {
			if opts.Sample, err = strconv.ParseFloat(v, 64); err != nil || opts.Sample <= 0 || opts.Sample > 1 {
				return apiErr(CodeInvalidArgument, "sample: want a fraction in (0, 1]", nil)
			}
		}
		out, err = st.Fsck(r.Context(), opts)
	case "lifecycle/preview", "lifecycle/apply":
		repo := q.Get("repository")
		if repo == "" {
			return apiErr(CodeInvalidArgument, "repository is required", nil)
		}
		body, rerr := io.ReadAll(io.LimitReader(r.Body, maxPolicyBody+1))
		if rerr != nil {
			return apiErr(CodeInvalidArgument, "reading the policy: "+rerr.Error(), nil)
		}
		if len(body) > maxPolicyBody {
			return apiErr(CodeTooLarge, fmt.Sprintf("policy over %d bytes", maxPolicyBody), nil)
		}
		policy := strings.TrimSpace(string(body))
		if op == "lifecycle/preview" {
			out, err = st.LifecyclePreview(r.Context(), repo, policy)
		} else {
			out, err = st.LifecycleApply(r.Context(), repo, policy)
		}
		if out == nil {
			out = []engine.Expiry{}
		}
		if errors.Is(err, engine.ErrInvalidPolicy) {
			return apiErr(CodeInvalidArgument, err.Error(), nil)
		}
	default:
		return apiErr(CodeNotFound, "no such admin operation: "+op, nil)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

func boolParam(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, apiErr(CodeInvalidArgument, fmt.Sprintf("%q is not a boolean", v), nil)
	}
	return b, nil
}
