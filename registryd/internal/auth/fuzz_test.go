package auth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// FuzzParseIdentities: an identity file (which the admin API's
// simulation takes from a request body) never panics the parser; it
// parses or is refused with ErrIdentities, and a parsed set answers every
// user it lists.
func FuzzParseIdentities(f *testing.F) {
	for _, seed := range []string{"testdata/iam.yaml", "testdata/iam.json"} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("users: {alice: {groups: [g]}}\ngroups: {g: {}}"))
	f.Add([]byte(`policies: {p: "{\"Version\":\"2012-10-17\",\"Statement\":[]}"}`))
	f.Add([]byte("policies: &a {p: *a}"))
	f.Fuzz(func(t *testing.T, text []byte) {
		ids, err := ParseIdentities("fuzz", text)
		if err != nil {
			if !errors.Is(err, ErrIdentities) {
				t.Fatalf("error without ErrIdentities: %v", err)
			}
			return
		}
		for _, u := range ids.Summary().Users {
			if _, err := ids.Principal("000000000000", u.Name); err != nil {
				t.Fatalf("listed user %q has no principal: %v", u.Name, err)
			}
		}
	})
}

// FuzzLoginToken: any password of user AWS is checked without a panic,
// and only tokens the key minted are accepted.
func FuzzLoginToken(f *testing.F) {
	tokens, err := newLoginTokens("")
	if err != nil {
		f.Fatal(err)
	}
	good, _ := tokens.mint("000000000000", "alice")
	f.Add(good)
	f.Add(strings.Replace(good, "berth2.", "berth1.", 1))
	f.Add("berth2.AAAAAAAAAAAAAAAA.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := tokens.check(token)
		if err != nil {
			if !errors.Is(err, errTokenInvalid) && !errors.Is(err, errTokenExpired) && !errors.Is(err, errTokenLegacy) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if token != good && (c.user != "alice" || c.account != "000000000000") {
			t.Fatalf("accepted a token this key did not mint: %q -> %+v", token, c)
		}
	})
}

// FuzzBasicAuth: basicAuth reads any Authorization header as net/http's
// Request.BasicAuth does, whether it fits its buffers or not.
func FuzzBasicAuth(f *testing.F) {
	for _, h := range []string{
		"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw")),
		"basic " + base64.StdEncoding.EncodeToString([]byte("AWS:berth2.token:with:colons")),
		"BASIC " + base64.StdEncoding.EncodeToString([]byte("nocolon")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 600)+":"+strings.Repeat("y", 300))),
		"Basic YWxpY2U6cHc", "Basic YWxp\r\nY2U6cHc=", "Basic ", "Basic", "Bearer abc", "", "Basic  YWxpY2U6cHc=",
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		if h != "" {
			r.Header["Authorization"] = []string{h}
		}
		wantUser, wantPass, wantOK := r.BasicAuth()
		var raw, dec [basicBufSize]byte
		user, pass, ok := basicAuth(authorizationHeader(r), raw[:], dec[:])
		if ok != wantOK || string(user) != wantUser || string(pass) != wantPass {
			t.Fatalf("header %q: basicAuth = %q, %q, %v; BasicAuth = %q, %q, %v", h, user, pass, ok, wantUser, wantPass, wantOK)
		}
	})
}
