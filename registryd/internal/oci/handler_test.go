package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBase(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	rec := do(s, http.MethodGet, "/v2/", nil, nil)
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "registry/2.0", rec.Header().Get("Docker-Distribution-API-Version"))
	assert.JSONEq(t, `{}`, rec.Body.String())
	requireOCIError(t, do(s, http.MethodGet, "/v2/nothing", nil, nil), 404, "NOT_FOUND")
	requireOCIError(t, do(s, http.MethodGet, "/other", nil, nil), 404, "NOT_FOUND")
}

func TestPathTraversalNames(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	for _, p := range []string{
		"/v2/../etc/manifests/latest",
		"/v2/a/../b/manifests/latest",
		"/v2/%2e%2e/etc/blobs/sha256:" + strings.Repeat("0", 64),
		"/v2/a/%2E%2E/manifests/x",
		"/v2/a%2F..%2Fb/tags/list",
		"/v2/.hidden/tags/list",
		"/v2/UPPER/tags/list",
		"/v2/" + strings.Repeat("a", 257) + "/tags/list",
	} {
		t.Run(p, func(t *testing.T) {
			req := do(h, http.MethodGet, p, nil, nil)
			if req.Code == 404 {
				requireOCIError(t, req, 404, "NOT_FOUND")
				return
			}
			requireOCIError(t, req, 400, "NAME_INVALID")
		})
	}
}

func TestBlobRange(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	data := []byte("0123456789abcdefghij")
	d := pushBlob(t, h, "r", data)
	path := "/v2/r/blobs/" + d.String()
	tests := []struct {
		name   string
		rng    string
		status int
		body   string
		cr     string
	}{
		{"whole", "", 200, string(data), ""},
		{"first bytes", "bytes=0-3", 206, "0123", "bytes 0-3/20"},
		{"suffix", "bytes=-2", 206, "ij", "bytes 18-19/20"},
		{"open", "bytes=15-", 206, "fghij", "bytes 15-19/20"},
		{"past end clipped", "bytes=18-100", 206, "ij", "bytes 18-19/20"},
		{"malformed ignored", "bytes=x-y", 200, string(data), ""},
		{"other unit ignored", "lines=1-2", 200, string(data), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(h, http.MethodGet, path, nil, map[string]string{"Range": tt.rng})
			require.Equal(t, tt.status, rec.Code)
			assert.Equal(t, tt.body, rec.Body.String())
			assert.Equal(t, tt.cr, rec.Header().Get("Content-Range"))
			assert.Equal(t, d.String(), rec.Header().Get("Docker-Content-Digest"))
		})
	}
	for _, rng := range []string{"bytes=20-", "bytes=500-0", "bytes=30-40,50-60"} {
		t.Run("unsatisfiable "+rng, func(t *testing.T) {
			rec := do(h, http.MethodGet, path, nil, map[string]string{"Range": rng})
			requireOCIError(t, rec, 416, "RANGE_INVALID")
			assert.Equal(t, "bytes */20", rec.Header().Get("Content-Range"))
		})
	}
}

func TestBlobMultiRange(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	data := []byte("0123456789abcdefghij")
	d := pushBlob(t, h, "r", data)
	rec := do(h, http.MethodGet, "/v2/r/blobs/"+d.String(), nil, map[string]string{"Range": "bytes=0-1,5-6,-1"})
	require.Equal(t, 206, rec.Code)
	mt, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/byteranges", mt)
	assert.Equal(t, fmt.Sprint(rec.Body.Len()), rec.Header().Get("Content-Length"))
	mr := multipart.NewReader(rec.Body, params["boundary"])
	want := []struct{ body, cr string }{{"01", "bytes 0-1/20"}, {"56", "bytes 5-6/20"}, {"j", "bytes 19-19/20"}}
	for _, w := range want {
		p, err := mr.NextPart()
		require.NoError(t, err)
		b, _ := io.ReadAll(p)
		assert.Equal(t, w.body, string(b))
		assert.Equal(t, w.cr, p.Header.Get("Content-Range"))
	}
	_, err = mr.NextPart()
	assert.Equal(t, io.EOF, err)

	// HEAD with ranges: same headers, no body.
	head := do(h, http.MethodHead, "/v2/r/blobs/"+d.String(), nil, map[string]string{"Range": "bytes=0-1,5-6,-1"})
	assert.Equal(t, 206, head.Code)
	assert.Equal(t, rec.Header().Get("Content-Length"), head.Header().Get("Content-Length"))
	assert.Zero(t, head.Body.Len())
}

func TestWrongDigests(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	data := []byte("hello")
	wrong := digest.FromString("other")
	requireOCIError(t, do(h, http.MethodPost, "/v2/r/blobs/uploads/?digest="+wrong.String(), data, nil), 400, "DIGEST_INVALID")
	requireOCIError(t, do(h, http.MethodPost, "/v2/r/blobs/uploads/?digest=sha256:xyz", data, nil), 400, "DIGEST_INVALID")
	requireOCIError(t, do(h, http.MethodPost, "/v2/r/blobs/uploads/?digest=md5:"+strings.Repeat("0", 32), data, nil), 400, "DIGEST_INVALID")
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/blobs/sha256:nothex", nil, nil), 400, "DIGEST_INVALID")
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/referrers/nope:1", nil, nil), 400, "DIGEST_INVALID")
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/manifests/sha256:123", nil, nil), 400, "DIGEST_INVALID")
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/manifests/-bad-tag", nil, nil), 400, "TAG_INVALID")

	// A session committed with the wrong digest.
	rec := do(h, http.MethodPost, "/v2/r/blobs/uploads/", nil, nil)
	require.Equal(t, 202, rec.Code)
	loc := rec.Header().Get("Location")
	requireOCIError(t, do(h, http.MethodPut, loc+"?digest="+wrong.String(), data, nil), 400, "DIGEST_INVALID")
	requireOCIError(t, do(h, http.MethodPut, loc, data, nil), 400, "DIGEST_INVALID")
	// A manifest whose digest reference does not match its bytes.
	m := imageManifest(digest.FromString("c"), digest.FromString("l"), 1, 1, nil, "")
	requireOCIError(t, do(h, http.MethodPut, "/v2/r/manifests/"+wrong.String(), m, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}), 400, "DIGEST_INVALID")
}

func TestChunkedUploadContentRange(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	rec := do(h, http.MethodPost, "/v2/r/blobs/uploads/", nil, nil)
	require.Equal(t, 202, rec.Code)
	assert.Equal(t, "0-0", rec.Header().Get("Range"))
	loc := rec.Header().Get("Location")
	id := rec.Header().Get("Docker-Upload-UUID")
	require.NotEmpty(t, id)
	require.True(t, strings.HasSuffix(loc, id))

	rec = do(h, http.MethodPatch, loc, []byte("abcd"), map[string]string{"Content-Range": "0-3"})
	require.Equal(t, 202, rec.Code, rec.Body.String())
	assert.Equal(t, "0-3", rec.Header().Get("Range"))

	tests := []struct {
		name   string
		cr     string
		body   string
		status int
		code   string
	}{
		{"wrong offset ahead", "10-13", "efgh", 416, "BLOB_UPLOAD_INVALID"},
		{"wrong offset back", "0-3", "efgh", 416, "BLOB_UPLOAD_INVALID"},
		{"malformed", "four-five", "efgh", 400, "BLOB_UPLOAD_INVALID"},
		{"reversed", "7-4", "efgh", 400, "BLOB_UPLOAD_INVALID"},
		{"length mismatch", "4-9", "efgh", 400, "BLOB_UPLOAD_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(h, http.MethodPatch, loc, []byte(tt.body), map[string]string{"Content-Range": tt.cr})
			requireOCIError(t, rec, tt.status, tt.code)
			if tt.status == 416 {
				assert.Equal(t, "0-3", rec.Header().Get("Range"))
			}
		})
	}
	// Status is unchanged by the refused chunks.
	rec = do(h, http.MethodGet, loc, nil, nil)
	assert.Equal(t, 204, rec.Code)
	assert.Equal(t, "0-3", rec.Header().Get("Range"))
	assert.Equal(t, id, rec.Header().Get("Docker-Upload-UUID"))

	// Streamed chunk without Content-Range, then the final PUT with a last chunk.
	rec = do(h, http.MethodPatch, loc, []byte("efgh"), nil)
	require.Equal(t, 202, rec.Code)
	assert.Equal(t, "0-7", rec.Header().Get("Range"))
	d := digest.FromString("abcdefghij")
	rec = do(h, http.MethodPut, loc+"?digest="+d.String(), []byte("ij"), map[string]string{"Content-Range": "8-9"})
	require.Equal(t, 201, rec.Code, rec.Body.String())
	assert.Equal(t, d.String(), rec.Header().Get("Docker-Content-Digest"))
	assert.Equal(t, "/v2/r/blobs/"+d.String(), rec.Header().Get("Location"))
	got := do(h, http.MethodGet, "/v2/r/blobs/"+d.String(), nil, nil)
	assert.Equal(t, "abcdefghij", got.Body.String())
	// The session is gone.
	requireOCIError(t, do(h, http.MethodGet, loc, nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
}

func TestUploadCancel(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	loc := do(h, http.MethodPost, "/v2/r/blobs/uploads", nil, nil).Header().Get("Location")
	assert.Equal(t, 204, do(h, http.MethodDelete, loc, nil, nil).Code)
	requireOCIError(t, do(h, http.MethodPatch, loc, []byte("x"), nil), 404, "BLOB_UPLOAD_UNKNOWN")
}

func TestMount(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	d := pushBlob(t, h, "src", []byte("layer"))
	tests := []struct {
		name   string
		query  string
		status int
	}{
		{"from source", "mount=" + d.String() + "&from=src", 201},
		{"without from, from a readable source", "mount=" + d.String(), 201},
		{"unknown source falls back", "mount=" + d.String() + "&from=nosuch", 202},
		{"invalid source falls back", "mount=" + d.String() + "&from=..", 202},
		{"unknown blob falls back", "mount=" + digest.FromString("x").String() + "&from=src", 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(h, http.MethodPost, "/v2/dst/blobs/uploads/?"+tt.query, nil, nil)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.status == 201 {
				assert.Equal(t, d.String(), rec.Header().Get("Docker-Content-Digest"))
			} else {
				assert.NotEmpty(t, rec.Header().Get("Docker-Upload-UUID"))
			}
		})
	}
	requireOCIError(t, do(h, http.MethodPost, "/v2/dst/blobs/uploads/?mount=bad", nil, nil), 400, "DIGEST_INVALID")
}

func TestManifests(t *testing.T) {
	s, _ := newTestAPI(t, Config{MaxManifestSize: 1 << 10})
	h := s
	cfg := pushBlob(t, h, "r", []byte("{}"))
	layer := pushBlob(t, h, "r", []byte("layer"))
	m := imageManifest(cfg, layer, 2, 5, nil, "")
	md := digest.FromBytes(m)
	const mt = "application/vnd.oci.image.manifest.v1+json"
	rec := do(h, http.MethodPut, "/v2/r/manifests/v1?tag=v2&tag=v3", m, map[string]string{"Content-Type": mt})
	require.Equal(t, 201, rec.Code, rec.Body.String())
	assert.Equal(t, md.String(), rec.Header().Get("Docker-Content-Digest"))
	assert.Equal(t, []string{"v2", "v3"}, rec.Header().Values("OCI-Tag"))
	assert.Empty(t, rec.Header().Get("OCI-Subject"))

	for _, ref := range []string{"v1", "v2", md.String()} {
		get := do(h, http.MethodGet, "/v2/r/manifests/"+ref, nil, nil)
		require.Equal(t, 200, get.Code)
		assert.Equal(t, mt, get.Header().Get("Content-Type"))
		assert.Equal(t, md.String(), get.Header().Get("Docker-Content-Digest"))
		assert.Equal(t, m, get.Body.Bytes())
		head := do(h, http.MethodHead, "/v2/r/manifests/"+ref, nil, nil)
		require.Equal(t, 200, head.Code)
		assert.Equal(t, fmt.Sprint(len(m)), head.Header().Get("Content-Length"))
	}

	// A referrer with a subject gets OCI-Subject and shows in the referrers list.
	ref := imageManifest(cfg, layer, 2, 5, &md, "application/vnd.example.sbom")
	rec = do(h, http.MethodPut, "/v2/r/manifests/"+digest.FromBytes(ref).String(), ref, map[string]string{"Content-Type": mt})
	require.Equal(t, 201, rec.Code)
	assert.Equal(t, md.String(), rec.Header().Get("OCI-Subject"))
	for _, tt := range []struct {
		filter string
		n      int
	}{{"", 1}, {"application/vnd.example.sbom", 1}, {"application/other", 0}} {
		rec := do(h, http.MethodGet, "/v2/r/referrers/"+md.String()+"?artifactType="+tt.filter, nil, nil)
		require.Equal(t, 200, rec.Code)
		assert.Equal(t, ociIndexMediaType, rec.Header().Get("Content-Type"))
		if tt.filter != "" {
			assert.Equal(t, "artifactType", rec.Header().Get("OCI-Filters-Applied"))
		} else {
			assert.Empty(t, rec.Header().Get("OCI-Filters-Applied"))
		}
		var idx struct {
			SchemaVersion int               `json:"schemaVersion"`
			Manifests     []json.RawMessage `json:"manifests"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &idx))
		assert.Equal(t, 2, idx.SchemaVersion)
		assert.Len(t, idx.Manifests, tt.n)
	}
	// Referrers of unknown repositories or subjects: an empty index.
	rec = do(h, http.MethodGet, "/v2/nosuch/referrers/"+md.String(), nil, nil)
	require.Equal(t, 200, rec.Code)
	assert.JSONEq(t, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, rec.Body.String())

	// Oversized manifests.
	big := bytes.Repeat([]byte(" "), 2<<10)
	requireOCIError(t, do(h, http.MethodPut, "/v2/r/manifests/big", big, map[string]string{"Content-Type": mt}), 413, "SIZE_INVALID")
	// Invalid tag parameters.
	requireOCIError(t, do(h, http.MethodPut, "/v2/r/manifests/"+md.String()+"?tag=-x", m, map[string]string{"Content-Type": mt}), 400, "TAG_INVALID")

	// Delete a tag, then the manifest.
	assert.Equal(t, 202, do(h, http.MethodDelete, "/v2/r/manifests/v3", nil, nil).Code)
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/manifests/v3", nil, nil), 404, "MANIFEST_UNKNOWN")
	assert.Equal(t, 202, do(h, http.MethodDelete, "/v2/r/manifests/"+md.String(), nil, nil).Code)
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/manifests/v1", nil, nil), 404, "MANIFEST_UNKNOWN")
	requireOCIError(t, do(h, http.MethodGet, "/v2/nosuch/manifests/v1", nil, nil), 404, "NAME_UNKNOWN")
	requireOCIError(t, do(h, http.MethodPost, "/v2/r/manifests/v1", nil, nil), 405, "UNSUPPORTED")
}

func TestOversizedManifestByContentLength(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	big := bytes.Repeat([]byte("a"), DefaultMaxManifestSize+1)
	requireOCIError(t, do(h, http.MethodPut, "/v2/r/manifests/big", big, map[string]string{"Content-Type": "application/json"}), 413, "SIZE_INVALID")
}

func TestPagination(t *testing.T) {
	s, _ := newTestAPI(t, Config{})
	h := s
	cfg := pushBlob(t, h, "r", []byte("{}"))
	m := imageManifest(cfg, cfg, 2, 2, nil, "")
	for _, tag := range []string{"c", "a", "b", "d"} {
		require.Equal(t, 201, do(h, http.MethodPut, "/v2/r/manifests/"+tag, m, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}).Code)
	}
	for _, repo := range []string{"z", "y"} {
		pushBlob(t, h, repo, []byte("x"))
	}
	tests := []struct {
		target string
		body   string
		link   string
	}{
		{"/v2/r/tags/list", `{"name":"r","tags":["a","b","c","d"]}`, ""},
		{"/v2/r/tags/list?n=2", `{"name":"r","tags":["a","b"]}`, `</v2/r/tags/list?last=b&n=2>; rel="next"`},
		{"/v2/r/tags/list?n=2&last=b", `{"name":"r","tags":["c","d"]}`, ""},
		{"/v2/r/tags/list?n=0", `{"name":"r","tags":[]}`, ""},
		{"/v2/r/tags/list?last=d", `{"name":"r","tags":[]}`, ""},
		{"/v2/_catalog", `{"repositories":["r","y","z"]}`, ""},
		{"/v2/_catalog?n=1", `{"repositories":["r"]}`, `</v2/_catalog?last=r&n=1>; rel="next"`},
		{"/v2/_catalog?n=5&last=r", `{"repositories":["y","z"]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := do(h, http.MethodGet, tt.target, nil, nil)
			require.Equal(t, 200, rec.Code)
			assert.JSONEq(t, tt.body, rec.Body.String())
			assert.Equal(t, tt.link, rec.Header().Get("Link"))
		})
	}
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/tags/list?n=-1", nil, nil), 400, "UNSUPPORTED")
	requireOCIError(t, do(h, http.MethodGet, "/v2/r/tags/list?n=x", nil, nil), 400, "UNSUPPORTED")
	requireOCIError(t, do(h, http.MethodGet, "/v2/nosuch/tags/list", nil, nil), 404, "NAME_UNKNOWN")
	requireOCIError(t, do(h, http.MethodGet, "/v2/nosuch/tags/list?n=0", nil, nil), 404, "NAME_UNKNOWN")
}
