package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sigTestTime is the server's clock in the SigV4 tests.
var sigTestTime = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// sigTestKey is the one key the SigV4 tests' credentials know.
var sigTestKey = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}

// sigTestBody is the body of the SigV4 tests' requests.
const sigTestBody = `{"registryIds":["123456789012"]}`

// sigTestSentinels are the errors Verify may wrap.
var sigTestSentinels = []error{ErrMissing, ErrMalformed, ErrScope, ErrUnknownKey, ErrExpired, ErrMismatch}

// sigTestScope is the scope the SigV4 tests' verifier accepts.
var sigTestScope = Scope{Region: "us-east-1", Service: Service}

// sigTestLookup is the SigV4 tests' credential store: sigTestKey only.
func sigTestLookup(accessKeyID string) (string, bool) {
	if accessKeyID != sigTestKey.AccessKeyID {
		return "", false
	}
	return sigTestKey.SecretAccessKey, true
}

// newECRTestRequest is a GetAuthorizationToken call with body to url, as
// the ECR API's clients make it, not yet signed.
func newECRTestRequest(t testing.TB, url, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
	return r
}

// sigV4Sign signs r, whose body is body, with the AWS SDK's signer for
// service in us-east-1 at time at. The payload hash is X-Amz-Content-Sha256
// when r has one, as the SDK's middleware does.
func sigV4Sign(t testing.TB, r *http.Request, body string, creds aws.Credentials, service string, at time.Time) {
	t.Helper()
	sigV4SignIn(t, r, body, creds, service, "us-east-1", at)
}

// sigV4SignIn is sigV4Sign for region.
func sigV4SignIn(t testing.TB, r *http.Request, body string, creds aws.Credentials, service, region string, at time.Time) {
	t.Helper()
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		hash = sigTestSHA256(body)
	}
	require.NoError(t, v4.NewSigner().SignHTTP(t.Context(), creds, r, hash, service, region, at))
}

// sigTestSHA256 is the hex SHA-256 of s.
func sigTestSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// setTestBody replaces r's body with body.
func setTestBody(r *http.Request, body string) {
	r.Body = http.NoBody
	if body != "" {
		r.Body = io.NopCloser(strings.NewReader(body))
	}
	r.ContentLength = int64(len(body))
	r.GetBody = nil
}

// sigTestResult is what the test server's Verify answered.
type sigTestResult struct {
	id  Identity
	err error
}

// newSigV4TestServer starts a server on 127.0.0.1 that reads each
// request's body, verifies its signature with sigTestLookup at
// sigTestTime, answers 403 with the error or 200 with the identity, and
// sends the result on the channel.
func newSigV4TestServer(t *testing.T) (*httptest.Server, <-chan sigTestResult) {
	results := make(chan sigTestResult, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var id Identity
		if err == nil {
			id, err = Verify(r, body, sigTestScope, sigTestLookup, sigTestTime)
		}
		results <- sigTestResult{id, err}
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "%s %s", id.AccessKeyID, id.Region)
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

// TestVerifySigV4 sends requests signed by the AWS SDK, some altered
// after signing, through a real HTTP server, and checks what Verify
// makes of them there.
func TestVerifySigV4(t *testing.T) {
	srv, results := newSigV4TestServer(t)
	tests := []struct {
		name    string
		target  string                          // path and query; "/" if empty
		creds   func(*aws.Credentials)          // changes sigTestKey for signing
		service string                          // "ecr" if empty
		region  string                          // "us-east-1" if empty
		age     time.Duration                   // signing time before sigTestTime
		before  func(*http.Request)             // changes the request before signing
		after   func(*testing.T, *http.Request) // changes the request after signing
		wantErr error                           // nil: verifies
	}{
		{name: "valid"},
		{name: "valid query and path needing encoding", target: "/some%20path/x~y%2Fz?b=2&a=hello%20world&a=%C3%BC%2F%2A&empty=&k%3Dx=1"},
		{name: "valid query encoded otherwise after signing", target: "/?b=2&a=hello%20world&a=%C3%BC%2F%2A&empty=",
			after: func(_ *testing.T, r *http.Request) { r.URL.RawQuery = "a=%c3%bc/*&empty&b=2&a=hello+world" }},
		{name: "valid X-Amz-Content-Sha256", before: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sigTestSHA256(sigTestBody)) }},
		{name: "valid unsigned payload", before: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload) }},
		{name: "valid repeated header and runs of spaces", before: func(r *http.Request) {
			r.Header.Add("X-Custom", "one")
			r.Header.Add("X-Custom", "two   three    four")
		}},
		{name: "valid session token", creds: func(c *aws.Credentials) { c.SessionToken = "token" }},
		{name: "valid 14 minutes old", age: 14 * time.Minute},
		{name: "valid 14 minutes ahead", age: -14 * time.Minute},
		{name: "valid empty body", before: func(r *http.Request) { setTestBody(r, "") }},
		{name: "wrong secret", creds: func(c *aws.Credentials) { c.SecretAccessKey += "x" }, wantErr: ErrMismatch},
		{name: "unknown key", creds: func(c *aws.Credentials) { c.AccessKeyID = "AKIDOTHER" }, wantErr: ErrUnknownKey},
		{name: "body altered", after: func(_ *testing.T, r *http.Request) { setTestBody(r, strings.Replace(sigTestBody, "1", "2", 1)) }, wantErr: ErrMismatch},
		{name: "body altered under X-Amz-Content-Sha256",
			before:  func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sigTestSHA256(sigTestBody)) },
			after:   func(_ *testing.T, r *http.Request) { setTestBody(r, strings.Replace(sigTestBody, "1", "2", 1)) },
			wantErr: ErrMismatch},
		{name: "X-Amz-Target altered", after: func(_ *testing.T, r *http.Request) {
			r.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DeleteRepository")
		}, wantErr: ErrMismatch},
		{name: "Content-Type removed", after: func(_ *testing.T, r *http.Request) { r.Header.Del("Content-Type") }, wantErr: ErrMismatch},
		{name: "X-Amz-Date altered", after: func(_ *testing.T, r *http.Request) {
			r.Header.Set("X-Amz-Date", sigTestTime.Add(time.Second).Format(DateFormat))
		}, wantErr: ErrMismatch},
		{name: "path altered", after: func(_ *testing.T, r *http.Request) { r.URL.Path = "/other" }, wantErr: ErrMismatch},
		{name: "query altered", target: "/?a=1", after: func(_ *testing.T, r *http.Request) { r.URL.RawQuery = "a=2" }, wantErr: ErrMismatch},
		{name: "method altered", after: func(_ *testing.T, r *http.Request) { r.Method = http.MethodPut }, wantErr: ErrMismatch},
		{name: "two X-Amz-Content-Sha256", before: func(r *http.Request) {
			r.Header.Add("X-Amz-Content-Sha256", UnsignedPayload)
			r.Header.Add("X-Amz-Content-Sha256", UnsignedPayload)
		}, wantErr: ErrMalformed},
		{name: "x-amz header added", after: func(_ *testing.T, r *http.Request) { r.Header.Set("X-Amz-Security-Token", "t") }, wantErr: ErrMalformed},
		{name: "20 minutes old", age: 20 * time.Minute, wantErr: ErrExpired},
		{name: "20 minutes ahead", age: -20 * time.Minute, wantErr: ErrExpired},
		{name: "no Authorization", after: func(_ *testing.T, r *http.Request) { r.Header.Del("Authorization") }, wantErr: ErrMissing},
		{name: "basic Authorization", after: func(_ *testing.T, r *http.Request) { r.SetBasicAuth("user", "pass") }, wantErr: ErrMissing},
		{name: "service s3", service: "s3", wantErr: ErrScope},
		{name: "service ecr-public", service: "ecr-public", wantErr: ErrScope},
		{name: "region eu-west-1", region: "eu-west-1", wantErr: ErrScope},
		{name: "region eu-west-1 and an unknown key", region: "eu-west-1", creds: func(c *aws.Credentials) { c.AccessKeyID = "AKIDOTHER" }, wantErr: ErrScope},
		{name: "garbage Authorization", after: func(_ *testing.T, r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage")
		}, wantErr: ErrMalformed},
		{name: "Authorization without signature", after: func(_ *testing.T, r *http.Request) {
			auth, _, _ := strings.Cut(r.Header.Get("Authorization"), ", Signature=")
			r.Header.Set("Authorization", auth)
		}, wantErr: ErrMalformed},
		{name: "Authorization with short signature", after: func(_ *testing.T, r *http.Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")[:len(r.Header.Get("Authorization"))-2])
		}, wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == "" {
				target = "/"
			}
			creds, service := sigTestKey, tc.service
			if tc.creds != nil {
				tc.creds(&creds)
			}
			if service == "" {
				service = Service
			}
			region := tc.region
			if region == "" {
				region = "us-east-1"
			}
			r := newECRTestRequest(t, srv.URL+target, sigTestBody)
			if tc.before != nil {
				tc.before(r)
			}
			body, err := io.ReadAll(r.Body)
			require.NoError(t, err)
			setTestBody(r, string(body))
			sigV4SignIn(t, r, string(body), creds, service, region, sigTestTime.Add(-tc.age))
			if tc.after != nil {
				tc.after(t, r)
			}

			resp, err := srv.Client().Do(r)
			require.NoError(t, err)
			answer, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			res := <-results

			if tc.wantErr == nil {
				require.NoError(t, res.err)
				assert.Equal(t, Identity{AccessKeyID: creds.AccessKeyID, Region: "us-east-1"}, res.id)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				return
			}
			require.ErrorIs(t, res.err, tc.wantErr)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Contains(t, string(answer), res.err.Error())
			t.Log(res.err)
		})
	}
}

// TestVerifySigV4Malformed checks, without a server, that requests whose
// Authorization, X-Amz-Date or query cannot be checked are ErrMalformed
// (or ErrMissing when they are not SigV4 at all).
func TestVerifySigV4Malformed(t *testing.T) {
	valid := newECRTestRequest(t, "http://ecr.test/", sigTestBody)
	sigV4Sign(t, valid, sigTestBody, sigTestKey, Service, sigTestTime)
	_, err := Verify(valid, []byte(sigTestBody), sigTestScope, sigTestLookup, sigTestTime)
	require.NoError(t, err)

	const (
		cred   = "Credential=AKIDEXAMPLE/20261201/us-east-1/ecr/aws4_request"
		signed = "SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target"
	)
	sig := "Signature=" + strings.Repeat("ab", 32)
	auth := func(components ...string) string { return "AWS4-HMAC-SHA256 " + strings.Join(components, ", ") }
	manyHeaders := "SignedHeaders=host;x-amz-date"
	for i := range maxSignedHeaders {
		manyHeaders += fmt.Sprintf(";x-h%02d", i)
	}
	tests := []struct {
		name    string
		change  func(*http.Request)
		wantErr error
	}{
		{"empty Authorization", setHeader("Authorization", ""), ErrMissing},
		{"other scheme", setHeader("Authorization", "Bearer x"), ErrMissing},
		{"scheme without space", setHeader("Authorization", "AWS4-HMAC-SHA256"+cred), ErrMissing},
		{"scheme alone", setHeader("Authorization", "AWS4-HMAC-SHA256"), ErrMalformed},
		{"scheme and space", setHeader("Authorization", "AWS4-HMAC-SHA256 "), ErrMalformed},
		{"two Authorization headers", func(r *http.Request) { r.Header.Add("Authorization", auth(cred, signed, sig)) }, ErrMalformed},
		{"too long", setHeader("Authorization", auth(cred, signed, sig)+strings.Repeat(" ", maxAuthLen)), ErrMalformed},
		{"no signature", setHeader("Authorization", auth(cred, signed)), ErrMalformed},
		{"no credential", setHeader("Authorization", auth(signed, sig)), ErrMalformed},
		{"duplicate component", setHeader("Authorization", auth(cred, signed, sig, sig)), ErrMalformed},
		{"unknown component", setHeader("Authorization", auth(cred, signed, sig, "Foo=bar")), ErrMalformed},
		{"component without =", setHeader("Authorization", auth(cred, signed, sig, "Foo")), ErrMalformed},
		{"trailing comma", setHeader("Authorization", auth(cred, signed, sig)+","), ErrMalformed},
		{"lowercase component", setHeader("Authorization", auth("credential"+cred[len("Credential"):], signed, sig)), ErrMalformed},
		{"credential of 4 parts", setHeader("Authorization", auth("Credential=AKIDEXAMPLE/20261201/us-east-1/ecr", signed, sig)), ErrMalformed},
		{"credential of 6 parts", setHeader("Authorization", auth(cred+"/x", signed, sig)), ErrMalformed},
		{"empty access key id", setHeader("Authorization", auth("Credential=/20261201/us-east-1/ecr/aws4_request", signed, sig)), ErrMalformed},
		{"empty region", setHeader("Authorization", auth("Credential=AKIDEXAMPLE/20261201//ecr/aws4_request", signed, sig)), ErrMalformed},
		{"bad terminator", setHeader("Authorization", auth(cred+"s", signed, sig)), ErrMalformed},
		{"scope date not X-Amz-Date's", setHeader("Authorization", auth(strings.Replace(cred, "20261201", "20261202", 1), signed, sig)), ErrMalformed},
		{"service s3", setHeader("Authorization", auth(strings.Replace(cred, "/ecr/", "/s3/", 1), signed, sig)), ErrScope},
		{"service api.ecr", setHeader("Authorization", auth(strings.Replace(cred, "/ecr/", "/api.ecr/", 1), signed, sig)), ErrScope},
		{"region us-west-2", setHeader("Authorization", auth(strings.Replace(cred, "/us-east-1/", "/us-west-2/", 1), signed, sig)), ErrScope},
		{"signed headers unsorted", setHeader("Authorization", auth(cred, "SignedHeaders=x-amz-date;host", sig)), ErrMalformed},
		{"signed headers repeated", setHeader("Authorization", auth(cred, "SignedHeaders=host;host;x-amz-date", sig)), ErrMalformed},
		{"signed header uppercase", setHeader("Authorization", auth(cred, "SignedHeaders=Host;x-amz-date", sig)), ErrMalformed},
		{"signed header empty", setHeader("Authorization", auth(cred, "SignedHeaders=host;;x-amz-date", sig)), ErrMalformed},
		{"signed header not a token", setHeader("Authorization", auth(cred, "SignedHeaders=host;x y;x-amz-date", sig)), ErrMalformed},
		{"host not signed", setHeader("Authorization", auth(cred, "SignedHeaders=x-amz-date", sig)), ErrMalformed},
		{"x-amz-date not signed", setHeader("Authorization", auth(cred, "SignedHeaders=host", sig)), ErrMalformed},
		{"too many signed headers", setHeader("Authorization", auth(cred, manyHeaders, sig)), ErrMalformed},
		{"signature not hex", setHeader("Authorization", auth(cred, signed, "Signature="+strings.Repeat("zz", 32))), ErrMalformed},
		{"signature too short", setHeader("Authorization", auth(cred, signed, "Signature="+strings.Repeat("ab", 31))), ErrMalformed},
		{"signature empty", setHeader("Authorization", auth(cred, signed, "Signature=")), ErrMalformed},
		{"no X-Amz-Date", func(r *http.Request) { r.Header.Del("X-Amz-Date") }, ErrMalformed},
		{"two X-Amz-Date", func(r *http.Request) { r.Header.Add("X-Amz-Date", "20261201T100000Z") }, ErrMalformed},
		{"X-Amz-Date ISO", setHeader("X-Amz-Date", "2026-12-01T10:00:00Z"), ErrMalformed},
		{"X-Amz-Date without Z", setHeader("X-Amz-Date", "20261201T100000"), ErrMalformed},
		{"X-Amz-Date month 13", setHeader("X-Amz-Date", "20261301T100000Z"), ErrMalformed},
		{"X-Amz-Date short hour", setHeader("X-Amz-Date", "20261201T90000Z"), ErrMalformed},
		{"bad query escape", func(r *http.Request) { r.URL.RawQuery = "a=%zz" }, ErrMalformed},
		{"query with semicolon", func(r *http.Request) { r.URL.RawQuery = "a=1;b=2" }, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := valid.Clone(t.Context())
			tc.change(r)
			_, err := Verify(r, []byte(sigTestBody), sigTestScope, sigTestLookup, sigTestTime)
			require.ErrorIs(t, err, tc.wantErr)
			t.Log(err)
		})
	}
}

// setHeader is a request change that sets header name to value.
func setHeader(name, value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

// TestScopeErrorMessages: a scope of another region or service is
// refused with AWS's words, the service checked first.
func TestScopeErrorMessages(t *testing.T) {
	for _, tc := range []struct{ region, service, want string }{
		{"eu-west-1", Service, "Credential should be scoped to a valid region, not 'eu-west-1'. "},
		{"us-east-1", "s3", "Credential should be scoped to correct service: 'ecr'. "},
		{"eu-west-1", "s3", "Credential should be scoped to correct service: 'ecr'. "},
	} {
		r := newECRTestRequest(t, "http://ecr.test/", sigTestBody)
		sigV4SignIn(t, r, sigTestBody, sigTestKey, tc.service, tc.region, sigTestTime)
		_, err := Authenticate(r, sigTestScope, sigTestLookup, sigTestTime)
		var se *ScopeError
		require.ErrorAs(t, err, &se)
		require.ErrorIs(t, err, ErrScope)
		assert.Equal(t, tc.want, se.AWSMessage())
	}
}

// TestAuthenticateNeedsNoBody: everything but the payload is checked
// before the body is read, and the pending request verifies with the
// body or refuses another.
func TestAuthenticateNeedsNoBody(t *testing.T) {
	r := newECRTestRequest(t, "http://ecr.test/", sigTestBody)
	sigV4Sign(t, r, sigTestBody, sigTestKey, Service, sigTestTime)
	r.Body = nil // nothing may read it
	p, err := Authenticate(r, sigTestScope, sigTestLookup, sigTestTime)
	require.NoError(t, err)
	assert.Equal(t, sigTestKey.AccessKeyID, p.AccessKeyID())
	_, err = p.Verify([]byte(`{"registryIds":["999999999999"]}`))
	require.ErrorIs(t, err, ErrMismatch)
	id, err := p.Verify([]byte(sigTestBody))
	require.NoError(t, err)
	assert.Equal(t, sigTestKey.AccessKeyID, id.AccessKeyID)

	_, err = Authenticate(r, sigTestScope, sigTestLookup, sigTestTime.Add(time.Hour))
	require.ErrorIs(t, err, ErrExpired)
	_, err = Authenticate(r, sigTestScope, func(string) (string, bool) { return "", false }, sigTestTime)
	require.ErrorIs(t, err, ErrUnknownKey)
	_, err = Authenticate(r, Scope{Region: "eu-west-1", Service: Service}, sigTestLookup, sigTestTime)
	require.ErrorIs(t, err, ErrScope)
}

// TestVerifySigV4AuthorizationForms checks that the Authorization
// header's components verify in any order, with or without spaces after
// the commas.
func TestVerifySigV4AuthorizationForms(t *testing.T) {
	r := newECRTestRequest(t, "http://ecr.test/", sigTestBody)
	sigV4Sign(t, r, sigTestBody, sigTestKey, Service, sigTestTime)
	params := strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "), ", ")
	require.Len(t, params, 3)
	forms := []string{
		strings.Join(params, ","),
		strings.Join([]string{params[2], params[0], params[1]}, ", "),
		strings.Join([]string{params[1], params[2], params[0]}, ",  "),
		" " + strings.Join([]string{params[2], params[1], params[0]}, " ,"),
	}
	for _, form := range forms {
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 "+form)
		id, err := Verify(r, []byte(sigTestBody), sigTestScope, sigTestLookup, sigTestTime)
		require.NoError(t, err, form)
		assert.Equal(t, Identity{AccessKeyID: sigTestKey.AccessKeyID, Region: "us-east-1"}, id)
	}
}

// TestCanonicalURI checks path normalization and double encoding.
func TestCanonicalURI(t *testing.T) {
	for in, want := range map[string]string{
		"":              "/",
		"/":             "/",
		"/v2/":          "/v2/",
		"/a/./b/../c":   "/a/c",
		"//a//b//":      "/a/b/",
		"/../a":         "/a",
		"/a/..":         "/",
		"/a/b/.":        "/a/b",
		"/a%20b/c~d":    "/a%2520b/c~d",
		"/a%2Fb/$&+,:@": "/a%252Fb/%24%26%2B%2C%3A%40",
	} {
		assert.Equal(t, want, canonicalURI(in), in)
	}
}

// TestCanonicalQuery checks query sorting and encoding.
func TestCanonicalQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"b=2&a=1&a=0":      "a=0&a=1&b=2",
		"a-b=1&a=2":        "a=2&a-b=1",
		"x=a+b&y=%2a~&z":   "x=a%20b&y=%2A~&z=",
		"k=%C3%BC&k=/?":    "k=%2F%3F&k=%C3%BC",
		"%41%62=%7e%21%27": "Ab=~%21%27",
	} {
		got, err := canonicalQuery(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

// FuzzVerifySigV4 fuzzes the Authorization header, X-Amz-Date and body of
// an otherwise fixed request: Verify must not panic, and must succeed
// only for the known key or fail with an error wrapping a sentinel.
func FuzzVerifySigV4(f *testing.F) {
	seed := newECRTestRequest(f, "http://ecr.test/", sigTestBody)
	sigV4Sign(f, seed, sigTestBody, sigTestKey, Service, sigTestTime)
	_, err := Verify(seed, []byte(sigTestBody), sigTestScope, sigTestLookup, sigTestTime)
	require.NoError(f, err)
	auth, amzDate := seed.Header.Get("Authorization"), seed.Header.Get("X-Amz-Date")
	f.Add(auth, amzDate, []byte(sigTestBody))
	f.Add(auth, amzDate, []byte(""))
	f.Add(strings.ReplaceAll(auth, ", ", ","), "20261201T101600Z", []byte(sigTestBody))
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDOTHER/20261201/us-east-1/ecr/aws4_request,SignedHeaders=host;x-amz-date,Signature=00", amzDate, []byte("{}"))
	f.Fuzz(func(t *testing.T, auth, amzDate string, body []byte) {
		r := newECRTestRequest(t, "http://ecr.test/", string(body))
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", amzDate)
		id, err := Verify(r, body, sigTestScope, sigTestLookup, sigTestTime)
		if err == nil {
			if id.AccessKeyID != sigTestKey.AccessKeyID {
				t.Fatalf("verified unknown key %q", id.AccessKeyID)
			}
			return
		}
		for _, sentinel := range sigTestSentinels {
			if errors.Is(err, sentinel) {
				return
			}
		}
		t.Fatalf("error wraps no sentinel: %v", err)
	})
}
