package sigv4

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The errors Authenticate and Verify answer; each is wrapped with a
// detail, so test them with errors.Is.
var (
	// ErrMissing reports a request without an Authorization header of
	// the AWS4-HMAC-SHA256 scheme.
	ErrMissing = errors.New("sigv4: request not signed with AWS4-HMAC-SHA256")
	// ErrMalformed reports a signature that cannot be checked: an
	// unparseable Authorization header, X-Amz-Date or query string, or a
	// credential scope that is not <akid>/<date>/<region>/<service>/aws4_request
	// for the date of X-Amz-Date.
	ErrMalformed = errors.New("sigv4: malformed AWS SigV4 signature")
	// ErrScope reports a credential scope for another region or service
	// than the verifier's (the error is a *ScopeError).
	ErrScope = errors.New("sigv4: credential scope of another region or service")
	// ErrUnknownKey reports an access key id that the credentials lack.
	ErrUnknownKey = errors.New("sigv4: unknown AWS access key id")
	// ErrExpired reports an X-Amz-Date more than MaxSkew away
	// from the server's clock.
	ErrExpired = errors.New("sigv4: AWS SigV4 request time too far from server time")
	// ErrMismatch reports a well-formed signature that does not sign
	// this request with the key's secret.
	ErrMismatch = errors.New("sigv4: AWS SigV4 signature does not match")
)

// ScopeError is a credential scope for another region or service; it
// wraps ErrScope.
type ScopeError struct {
	// Region and Service are what the scope names.
	Region, Service string
	// Want is the scope the verifier accepts.
	Want Scope
}

// Error implements error.
func (e *ScopeError) Error() string { return ErrScope.Error() + ": " + e.AWSMessage() }

// Unwrap returns ErrScope.
func (e *ScopeError) Unwrap() error { return ErrScope }

// AWSMessage is AWS's message for the refusal (of an
// InvalidSignatureException): "Credential should be scoped to correct
// service: 'ecr'. " or "Credential should be scoped to a valid region,
// not 'eu-west-1'. ".
func (e *ScopeError) AWSMessage() string {
	if e.Service != e.Want.Service {
		return "Credential should be scoped to correct service: '" + e.Want.Service + "'. "
	}
	return "Credential should be scoped to a valid region, not '" + e.Region + "'. "
}

// Scope is the region and service a signature must be scoped to.
type Scope struct {
	Region, Service string
}

const (
	// Algorithm is the only Authorization scheme Verify accepts.
	Algorithm = "AWS4-HMAC-SHA256"
	// Service is the ECR API's service name in a credential scope.
	Service = "ecr"
	// terminator ends every credential scope.
	terminator = "aws4_request"
	// DateFormat is the layout of X-Amz-Date.
	DateFormat = "20060102T150405Z"
	// UnsignedPayload is the X-Amz-Content-Sha256 value of a request
	// whose body is not signed.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// MaxSkew is how far X-Amz-Date may be from now, either way.
	MaxSkew = 15 * time.Minute
	// maxAuthLen bounds the Authorization header.
	maxAuthLen = 4 << 10
	// maxSignedHeaders bounds the SignedHeaders list.
	maxSignedHeaders = 64
)

// Credentials looks up the secret key of an access key id.
type Credentials func(accessKeyID string) (secret string, ok bool)

// Identity is who signed a verified request, and for which region.
type Identity struct{ AccessKeyID, Region string }

// authorization is a parsed AWS4-HMAC-SHA256 Authorization header, with the
// request's X-Amz-Date.
type authorization struct {
	amzDate       string // as sent, 20261201T150405Z
	signedAt      time.Time
	accessKeyID   string
	scope         string // <date>/<region>/<service>/aws4_request
	date          string // yyyymmdd
	region        string
	service       string
	signedHeaders []string // lowercase, strictly ascending
	signature     []byte
}

// Pending is a request whose signature passed every check that needs no
// body (Authenticate): Verify finishes with the body.
type Pending struct {
	r      *http.Request
	auth   authorization
	secret string
}

// Authenticate checks what r's headers can tell before its body is
// read: the Authorization header parses, its credential scope is for
// scope's region and service and the date of X-Amz-Date, X-Amz-Date is
// within MaxSkew of now, every x-amz-* header is signed, and creds knows
// the access key. Errors wrap ErrMissing, ErrMalformed, ErrScope (a
// *ScopeError), ErrExpired or ErrUnknownKey, checked in that order. The
// Pending's Verify then checks the signature over the body.
func Authenticate(r *http.Request, scope Scope, creds Credentials, now time.Time) (*Pending, error) {
	auth, err := parseRequest(r)
	if err != nil {
		return nil, err
	}
	if auth.service != scope.Service || auth.region != scope.Region {
		return nil, &ScopeError{Region: auth.region, Service: auth.service, Want: scope}
	}
	if skew := now.Sub(auth.signedAt); skew > MaxSkew || skew < -MaxSkew {
		return nil, fmt.Errorf("%w: X-Amz-Date %s is more than %v from server time %s",
			ErrExpired, auth.amzDate, MaxSkew, now.UTC().Format(DateFormat))
	}
	secret, ok := creds(auth.accessKeyID)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, auth.accessKeyID)
	}
	return &Pending{r: r, auth: auth, secret: secret}, nil
}

// AccessKeyID is the access key the request claims to be signed with.
func (p *Pending) AccessKeyID() string { return p.auth.accessKeyID }

// Verify checks that the request's signature, with the body read into
// body, is the key's: errors wrap ErrMalformed or ErrMismatch.
func (p *Pending) Verify(body []byte) (Identity, error) {
	payloadHash, err := payloadHash(p.r, body)
	if err != nil {
		return Identity{}, err
	}
	canonical, err := canonicalRequest(p.r, p.auth.signedHeaders, payloadHash)
	if err != nil {
		return Identity{}, err
	}
	want := hmacSHA256(signingKey(p.secret, p.auth), stringToSign(p.auth.amzDate, p.auth.scope, canonical))
	if !hmac.Equal(want, p.auth.signature) {
		return Identity{}, fmt.Errorf("%w: for access key id %q", ErrMismatch, p.auth.accessKeyID)
	}
	return Identity{AccessKeyID: p.auth.accessKeyID, Region: p.auth.region}, nil
}

// Verify checks that r, whose body has been read into body, carries a
// valid AWS Signature Version 4 for scope, made within MaxSkew of now
// with a secret that creds knows, and answers who signed it: Authenticate
// and Pending.Verify in one.
func Verify(r *http.Request, body []byte, scope Scope, creds Credentials, now time.Time) (Identity, error) {
	p, err := Authenticate(r, scope, creds, now)
	if err != nil {
		return Identity{}, err
	}
	return p.Verify(body)
}

// parseRequest parses r's Authorization header and X-Amz-Date and
// checks that they agree and that every x-amz-* header r has is signed.
func parseRequest(r *http.Request) (authorization, error) {
	auth, err := parseAuthorization(r.Header.Values("Authorization"))
	if err != nil {
		return authorization{}, err
	}
	if auth.amzDate, auth.signedAt, err = parseDate(r.Header.Values("X-Amz-Date")); err != nil {
		return authorization{}, err
	}
	if auth.date != auth.amzDate[:8] {
		return authorization{}, fmt.Errorf("%w: credential scope date %s is not the date of X-Amz-Date %s", ErrMalformed, auth.date, auth.amzDate)
	}
	if err := checkAmzHeadersSigned(r.Header, auth.signedHeaders); err != nil {
		return authorization{}, err
	}
	return auth, nil
}

// parseAuthorization parses the Authorization header's values: one
// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...",
// whose components may come in any order, with or without spaces after
// the commas.
func parseAuthorization(values []string) (authorization, error) {
	if len(values) == 0 || values[0] == "" {
		return authorization{}, fmt.Errorf("%w: no Authorization header", ErrMissing)
	}
	scheme, params, _ := strings.Cut(values[0], " ")
	if scheme != Algorithm {
		return authorization{}, fmt.Errorf("%w: Authorization scheme is not %s", ErrMissing, Algorithm)
	}
	if len(values) > 1 {
		return authorization{}, fmt.Errorf("%w: %d Authorization headers", ErrMalformed, len(values))
	}
	if len(values[0]) > maxAuthLen {
		return authorization{}, fmt.Errorf("%w: Authorization header longer than %d bytes", ErrMalformed, maxAuthLen)
	}
	fields, err := authFields(params)
	if err != nil {
		return authorization{}, err
	}
	var auth authorization
	if err := auth.parseCredential(fields["Credential"]); err != nil {
		return authorization{}, err
	}
	if auth.signedHeaders, err = parseSignedHeaders(fields["SignedHeaders"]); err != nil {
		return authorization{}, err
	}
	if auth.signature, err = parseSignature(fields["Signature"]); err != nil {
		return authorization{}, err
	}
	return auth, nil
}

// authFields splits the Authorization parameters into exactly the
// Credential, SignedHeaders and Signature components, each given once.
func authFields(params string) (map[string]string, error) {
	fields := map[string]string{}
	for part := range strings.SplitSeq(params, ",") {
		part = strings.TrimSpace(part)
		key, value, ok := strings.Cut(part, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: Authorization component %q is not key=value", ErrMalformed, part)
		case key != "Credential" && key != "SignedHeaders" && key != "Signature":
			return nil, fmt.Errorf("%w: unknown Authorization component %q", ErrMalformed, key)
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("%w: Authorization component %s given twice", ErrMalformed, key)
		}
		fields[key] = value
	}
	if len(fields) != 3 {
		return nil, fmt.Errorf("%w: Authorization needs Credential, SignedHeaders and Signature", ErrMalformed)
	}
	return fields, nil
}

// parseCredential fills the access key id and scope from a Credential
// component: <akid>/<yyyymmdd>/<region>/<service>/aws4_request.
func (a *authorization) parseCredential(cred string) error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || slices.Contains(parts, "") {
		return fmt.Errorf("%w: Credential %q is not <akid>/<date>/<region>/<service>/%s", ErrMalformed, cred, terminator)
	}
	if parts[4] != terminator {
		return fmt.Errorf("%w: credential scope ends in %q, not %q", ErrMalformed, parts[4], terminator)
	}
	a.accessKeyID, a.date, a.region, a.service = parts[0], parts[1], parts[2], parts[3]
	a.scope = strings.Join(parts[1:], "/")
	return nil
}

// parseSignedHeaders parses a SignedHeaders component: at most
// maxSignedHeaders lowercase header names, sorted, without
// duplicates, including host and x-amz-date.
func parseSignedHeaders(s string) ([]string, error) {
	if strings.Count(s, ";") >= maxSignedHeaders {
		return nil, fmt.Errorf("%w: more than %d signed headers", ErrMalformed, maxSignedHeaders)
	}
	names := strings.Split(s, ";")
	for i, name := range names {
		if !isHeaderName(name) {
			return nil, fmt.Errorf("%w: signed header %q is not a lowercase header name", ErrMalformed, name)
		}
		if i > 0 && names[i-1] >= name {
			return nil, fmt.Errorf("%w: SignedHeaders %q is not sorted and unique", ErrMalformed, s)
		}
	}
	for _, required := range []string{"host", "x-amz-date"} {
		if _, found := slices.BinarySearch(names, required); !found {
			return nil, fmt.Errorf("%w: SignedHeaders lacks %s", ErrMalformed, required)
		}
	}
	return names, nil
}

// isHeaderName reports whether name is a non-empty HTTP token
// without uppercase letters.
func isHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// parseSignature decodes a Signature component: 64 hex digits.
func parseSignature(s string) ([]byte, error) {
	sig, err := hex.DecodeString(s)
	if err != nil || len(sig) != sha256.Size {
		return nil, fmt.Errorf("%w: Signature is not %d hex digits", ErrMalformed, 2*sha256.Size)
	}
	return sig, nil
}

// parseDate parses the X-Amz-Date header's values: exactly one, in
// the form 20261201T150405Z.
func parseDate(values []string) (string, time.Time, error) {
	if len(values) != 1 {
		return "", time.Time{}, fmt.Errorf("%w: want one X-Amz-Date header, have %d", ErrMalformed, len(values))
	}
	t, err := time.Parse(DateFormat, values[0])
	if err != nil || t.Format(DateFormat) != values[0] {
		return "", time.Time{}, fmt.Errorf("%w: X-Amz-Date %q is not of the form %s", ErrMalformed, values[0], DateFormat)
	}
	return values[0], t, nil
}

// checkAmzHeadersSigned checks that every x-amz-* header is among
// the signed ones, so that none (X-Amz-Target, which names the
// operation, above all) can be added to a signed request.
func checkAmzHeadersSigned(h http.Header, signed []string) error {
	for name := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-") {
			continue
		}
		if _, found := slices.BinarySearch(signed, lower); !found {
			return fmt.Errorf("%w: header %s is not signed", ErrMalformed, name)
		}
	}
	return nil
}

// payloadHash answers the payload hash of the canonical request: the
// hex SHA-256 of body, or UNSIGNED-PAYLOAD if X-Amz-Content-Sha256 says
// so. Any other X-Amz-Content-Sha256 must be the body's hash.
func payloadHash(r *http.Request, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	claimed := r.Header.Values("X-Amz-Content-Sha256")
	switch {
	case len(claimed) == 0:
		return hash, nil
	case len(claimed) > 1:
		return "", fmt.Errorf("%w: %d X-Amz-Content-Sha256 headers", ErrMalformed, len(claimed))
	case claimed[0] == UnsignedPayload:
		return UnsignedPayload, nil
	case claimed[0] != hash:
		return "", fmt.Errorf("%w: X-Amz-Content-Sha256 is not the SHA-256 of the body", ErrMismatch)
	}
	return hash, nil
}

// canonicalRequest builds the canonical request of the AWS spec:
// method, URI, query, headers, signed header names and payload hash.
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) (string, error) {
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	headers, err := canonicalHeaders(r, signedHeaders)
	if err != nil {
		return "", err
	}
	return strings.Join([]string{
		r.Method,
		canonicalURI(r.URL.EscapedPath()),
		query,
		headers,
		strings.Join(signedHeaders, ";"),
		payloadHash,
	}, "\n"), nil
}

// canonicalURI normalizes an escaped path as AWS does for every
// service but S3 (no empty, "." or ".." segments; "/" if nothing is
// left) and URI-encodes it once more, keeping the slashes.
func canonicalURI(escapedPath string) string {
	var segments []string
	for seg := range strings.SplitSeq(escapedPath, "/") {
		switch seg {
		case "", ".":
		case "..":
			segments = segments[:max(len(segments)-1, 0)]
		default:
			segments = append(segments, seg)
		}
	}
	path := "/" + strings.Join(segments, "/")
	if len(segments) > 0 && strings.HasSuffix(escapedPath, "/") {
		path += "/"
	}
	return escape(path, true)
}

// canonicalQuery answers the query's parameters URI-encoded, sorted
// by key then value, as key=value joined with "&".
func canonicalQuery(rawQuery string) (string, error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("%w: query string: %w", ErrMalformed, err)
	}
	var params [][2]string
	for key, vs := range values {
		for _, v := range vs {
			params = append(params, [2]string{escape(key, false), escape(v, false)})
		}
	}
	slices.SortFunc(params, func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p[0] + "=" + p[1])
	}
	return b.String(), nil
}

// escape URI-encodes s the AWS way: every byte outside A-Z a-z 0-9
// - _ . ~ (and "/" if keepSlash) becomes %XX, uppercase.
func escape(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || keepSlash && c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// canonicalHeaders answers a "name:value\n" line for each signed
// header, its values trimmed, runs of spaces collapsed, and joined with
// ",". A signed header the request lacks fails the check.
func canonicalHeaders(r *http.Request, signedHeaders []string) (string, error) {
	var b strings.Builder
	for _, name := range signedHeaders {
		values, ok := headerValues(r, name)
		if !ok {
			return "", fmt.Errorf("%w: signed header %s is not in the request", ErrMismatch, name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(headerValue(v))
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// headerValue trims v and collapses its runs of spaces into one.
func headerValue(v string) string {
	v = strings.TrimSpace(v)
	for strings.Contains(v, "  ") {
		v = strings.ReplaceAll(v, "  ", " ")
	}
	return v
}

// headerValues answers the values of header name (lowercase) as the
// client sent them: Go's server keeps Host and Content-Length apart from
// r.Header.
func headerValues(r *http.Request, name string) ([]string, bool) {
	switch name {
	case "host":
		return []string{r.Host}, r.Host != ""
	case "content-length":
		if _, ok := r.Header["Content-Length"]; !ok && r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}, true
		}
	}
	values, ok := r.Header[textproto.CanonicalMIMEHeaderKey(name)]
	return values, ok
}

// stringToSign is the string the signature is the HMAC of.
func stringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// signingKey derives the signing key of secret for auth's scope.
func signingKey(secret string, auth authorization) []byte {
	key := []byte("AWS4" + secret)
	for _, s := range []string{auth.date, auth.region, auth.service, terminator} {
		key = hmacSHA256(key, s)
	}
	return key
}

// hmacSHA256 is HMAC-SHA256 of data with key.
func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
