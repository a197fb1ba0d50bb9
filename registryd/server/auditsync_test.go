package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
)

// TestUploadSessionStepsAreNotSynced: the steps of an upload session
// (its start, a chunk, its state, its cancel) are recorded, written but
// not synced, since they change nothing durable; the completing PUT and
// the manifest PUT are synced before their answers (which wait for the
// sync the change overlapped).
func TestUploadSessionStepsAreNotSynced(t *testing.T) {
	s := newAuditServer(t, nil)
	blob := []byte("a layer")
	d := digest.FromBytes(blob)
	syncs := func() uint64 { return s.e.AuditStatus().Syncs }

	// The repository exists first (its creation is a synced change).
	resp, _ := s.oci(t, "alice", http.MethodPost, "/v2/scratch/blobs/uploads/?digest="+d.String(), blob, nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	before := syncs()
	step := func(method, path string, body []byte, want int) string {
		t.Helper()
		resp, _ := s.oci(t, "alice", method, path, body, map[string]string{"Content-Type": "application/octet-stream"})
		require.Equal(t, want, resp.StatusCode, "%s %s", method, path)
		id := resp.Header.Get("X-Request-Id")
		recs := s.records(t, id)
		require.Len(t, recs, 1, "%s %s", method, path)
		require.Equal(t, engine.AuditAllow, recs[0].Decision)
		return resp.Header.Get("Location")
	}
	loc := step(http.MethodPost, "/v2/scratch/blobs/uploads/", nil, http.StatusAccepted)
	step(http.MethodPatch, loc, blob, http.StatusAccepted)
	step(http.MethodGet, loc, nil, http.StatusNoContent)
	require.Equal(t, before, syncs(), "no session step is synced")

	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	step(http.MethodPut, loc+sep+"digest="+d.String(), nil, http.StatusCreated)
	require.Greater(t, syncs(), before, "the completing PUT's record is synced")

	other := step(http.MethodPost, "/v2/scratch/blobs/uploads/", nil, http.StatusAccepted)
	before = syncs()
	step(http.MethodDelete, other, nil, http.StatusNoContent)
	require.Equal(t, before, syncs(), "a cancel is not synced")
}

// syncOrder is a ResponseWriter that notes whether the audit sync had
// run when the answer began (its status line, body or flush).
type syncOrder struct {
	*httptest.ResponseRecorder
	synced      *bool
	began       bool
	syncedFirst bool
}

func (w *syncOrder) begin() {
	if !w.began {
		w.began, w.syncedFirst = true, *w.synced
	}
}

func (w *syncOrder) WriteHeader(code int) {
	w.begin()
	w.ResponseRecorder.WriteHeader(code)
}

func (w *syncOrder) Write(p []byte) (int, error) {
	w.begin()
	return w.ResponseRecorder.Write(p)
}

func (w *syncOrder) Flush() {
	w.begin()
	w.ResponseRecorder.Flush()
}

// TestAnswerWaitsForAuditSync: the answer of a request whose change
// records are being synced goes out only after the syncs (also the
// implicit 200 of a handler that writes nothing); a sync that fails turns
// the answer into 503 with Retry-After, the handler's headers and body
// dropped.
func TestAnswerWaitsForAuditSync(t *testing.T) {
	failed := fmt.Errorf("%w: sync: %w", engine.ErrAuditUnavailable, errors.New("EIO"))
	for _, tc := range []struct {
		name    string
		syncErr error
		handler func(w http.ResponseWriter)
		status  int
	}{
		{"201", nil, func(w http.ResponseWriter) { w.Header().Set("Location", "/x"); w.WriteHeader(http.StatusCreated) }, http.StatusCreated},
		{"a body without a status", nil, func(w http.ResponseWriter) { _, _ = w.Write([]byte("{}")) }, http.StatusOK},
		{"nothing written", nil, func(http.ResponseWriter) {}, http.StatusOK},
		{"a flush", nil, func(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }, http.StatusOK},
		{"201, the sync fails", failed, func(w http.ResponseWriter) {
			w.Header().Set("Location", "/x")
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusCreated)
			_, err := w.Write([]byte("ignored"))
			require.Error(t, err)
		}, http.StatusServiceUnavailable},
		{"nothing written, the sync fails", failed, func(http.ResponseWriter) {}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestHandler(t, Config{DisableAccessLog: true})
			synced := false
			h := s.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				info := request.InfoFrom(r.Context())
				require.True(t, info.AddAuditSync(func() error { synced = true; return tc.syncErr }))
				tc.handler(w)
			}))
			w := &syncOrder{ResponseRecorder: httptest.NewRecorder(), synced: &synced}
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPut, "/v2/app/manifests/v1", nil))
			require.True(t, synced)
			require.True(t, !w.began || w.syncedFirst, "the answer waited for the sync")
			require.Equal(t, tc.status, w.Code)
			if tc.syncErr != nil {
				require.Empty(t, w.Header().Get("Location"))
				require.NotEmpty(t, w.Header().Get("Retry-After"))
				require.NotEmpty(t, w.Header().Get("X-Request-Id"))
				require.Contains(t, w.Body.String(), "UNAVAILABLE")
			}
		})
	}
}

// TestListingRecordedTogether: a catalog is recorded once, what it
// showed and hid counted, and each repository it hid as its own denial,
// a page's denials in one write(2).
func TestListingRecordedTogether(t *testing.T) {
	s := newAuditServer(t, nil)
	for i := range 30 {
		blob := []byte(fmt.Sprintf("layer %d", i))
		resp, _ := s.oci(t, "alice", http.MethodPost, fmt.Sprintf("/v2/scratch/r%02d/blobs/uploads/?digest=%s", i, digest.FromBytes(blob)), blob, nil)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
	}
	writes := s.e.AuditStatus().Writes
	resp, body := s.oci(t, "alice", http.MethodGet, "/v2/_catalog?n=10", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "scratch/r09")
	require.LessOrEqual(t, s.e.AuditStatus().Writes-writes, uint64(2), "the listing is one record")
	recs := s.records(t, resp.Header.Get("X-Request-Id"))
	// The version check's question is not this request's; the page of 10
	// asks about 11 repositories (the 11th: whether more follow), all
	// allowed: the listing's one record.
	require.Len(t, recs, 1)
	require.Equal(t, string(authz.DescribeRepositories), recs[0].Action)
	require.Equal(t, engine.AuditAllow, recs[0].Decision)
	require.Equal(t, map[string]string{"repositoriesShown": "10", "repositoriesHidden": "0"}, recs[0].Parameters)

	// bob, whom one repository's policy refuses: the repository hidden
	// is recorded as its denial, and the listing once.
	require.NoError(t, s.e.SetRepositoryPolicy(context.Background(), "scratch/r05", `{"Version":"2012-10-17","Statement":[{"Sid":"NotBob","Effect":"Deny",`+
		`"Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:*"}]}`))
	resp, body = s.oci(t, "bob", http.MethodGet, "/v2/_catalog", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.NotContains(t, string(body), `"scratch/r05"`)
	recs = s.records(t, resp.Header.Get("X-Request-Id"))
	require.Len(t, recs, 2)
	require.Equal(t, "scratch/r05", recs[0].Repository)
	require.Equal(t, engine.AuditExplicitDeny, recs[0].Decision)
	require.Contains(t, recs[0].Statement, `Sid "NotBob"`)
	require.Equal(t, "arn:aws:iam::000000000000:user/bob", recs[0].PrincipalARN)
	require.Equal(t, "*", recs[1].Resource)
	require.Equal(t, map[string]string{"repositoriesShown": "29", "repositoriesHidden": "1"}, recs[1].Parameters)
}
