package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/berthstore/berth/registryd/internal/auth"
)

// FuzzRepositoryAndTemplateBodies: the repository and template
// operations take their names and bodies from any caller: whatever they
// send, the answer is 200 or a 4xx with the OCI error JSON, never a panic
// or a 5xx. (The key operations take a name only, which the keyring and
// the HSM validate; making thousands of keys would only slow the fuzzer.)
func FuzzRepositoryAndTemplateBodies(f *testing.F) {
	var names []string
	for name := range operations {
		if strings.HasPrefix(name, "repositories") || strings.HasPrefix(name, "templates") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	f.Add(uint8(0), "team-a/app", []byte(`{"imageTagMutability":"IMMUTABLE"}`))
	f.Add(uint8(1), "", []byte(`{"prefix":"team","appliedFor":["CREATE_ON_PUSH"]}`))
	f.Add(uint8(2), "pkcs11:token=x;object=y", []byte(`{"encryptionConfiguration":{"encryptionType":"KMS","kmsKey":"nope"}}`))
	f.Add(uint8(3), "../../etc", []byte(`{"resourceTags":[{"Key":"","Value":""}],"lifecyclePolicy":"{"}`))
	f.Add(uint8(4), "ROOT", []byte(`{"prefix":"ROOT","appliedFor":[],"createdAt":"x"}`))
	a, _ := newTestAPI(f, auth.Config{})
	f.Fuzz(func(t *testing.T, op uint8, name string, body []byte) {
		target := Prefix + names[int(op)%len(names)] + "?" + url.Values{"name": {name}, "prefix": {name}, "repository": {name}}.Encode()
		method := operations[names[int(op)%len(names)]].method
		if method == "" {
			method = http.MethodPost
		}
		req, err := http.NewRequest(method, "http://registry"+target, nil)
		if err != nil {
			return
		}
		rec := doRequest(a, req, body)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body.String())
		}
		if rec.Code != http.StatusOK && rec.Header().Get("Content-Type") == "application/json" {
			var e struct {
				Errors []struct{ Code, Message string } `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || len(e.Errors) != 1 {
				t.Fatalf("%s %s: not the OCI error JSON: %s", method, target, rec.Body.String())
			}
		}
	})
}

// doRequest serves req with body through a.
func doRequest(a *API, req *http.Request, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(req.Method, req.URL.String(), bytes.NewReader(body))
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, r)
	return rec
}
