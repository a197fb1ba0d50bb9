package server

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

// The errors verifySigV4 answers; each is wrapped with a detail, so test
// them with errors.Is.
var (
	// errSigMissing reports a request without an Authorization header of
	// the AWS4-HMAC-SHA256 scheme.
	errSigMissing = errors.New("registryd: request not signed with AWS4-HMAC-SHA256")
	// errSigMalformed reports a signature that cannot be checked: an
	// unparseable Authorization header, X-Amz-Date or query string, or a
	// credential scope that is not <akid>/<date>/<region>/ecr/aws4_request
	// for the date of X-Amz-Date.
	errSigMalformed = errors.New("registryd: malformed AWS SigV4 signature")
	// errSigUnknownKey reports an access key id that the credentials lack.
	errSigUnknownKey = errors.New("registryd: unknown AWS access key id")
	// errSigExpired reports an X-Amz-Date more than sigV4MaxSkew away
	// from the server's clock.
	errSigExpired = errors.New("registryd: AWS SigV4 request time too far from server time")
	// errSigMismatch reports a well-formed signature that does not sign
	// this request with the key's secret.
	errSigMismatch = errors.New("registryd: AWS SigV4 signature does not match")
)

const (
	// sigV4Algorithm is the only Authorization scheme verifySigV4 accepts.
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	// sigV4Service is the only service a credential scope may name.
	sigV4Service = "ecr"
	// sigV4Terminator ends every credential scope.
	sigV4Terminator = "aws4_request"
	// sigV4DateFormat is the layout of X-Amz-Date.
	sigV4DateFormat = "20060102T150405Z"
	// sigV4UnsignedPayload is the X-Amz-Content-Sha256 value of a request
	// whose body is not signed.
	sigV4UnsignedPayload = "UNSIGNED-PAYLOAD"
	// sigV4MaxSkew is how far X-Amz-Date may be from now, either way.
	sigV4MaxSkew = 15 * time.Minute
	// sigV4MaxAuthLen bounds the Authorization header.
	sigV4MaxAuthLen = 4 << 10
	// sigV4MaxSignedHeaders bounds the SignedHeaders list.
	sigV4MaxSignedHeaders = 64
)

// sigV4Credentials looks up the secret key of an access key id.
type sigV4Credentials func(accessKeyID string) (secret string, ok bool)

// sigV4Identity is who signed a verified request, and for which region.
type sigV4Identity struct{ AccessKeyID, Region string }

// sigV4Auth is a parsed AWS4-HMAC-SHA256 Authorization header, with the
// request's X-Amz-Date.
type sigV4Auth struct {
	amzDate       string // as sent, 20261201T150405Z
	signedAt      time.Time
	accessKeyID   string
	scope         string // <date>/<region>/<service>/aws4_request
	date          string // yyyymmdd
	region        string
	signedHeaders []string // lowercase, strictly ascending
	signature     []byte
}

// verifySigV4 checks that r, whose body has been read into body, carries
// a valid AWS Signature Version 4 in its Authorization header, made for
// the "ecr" service within sigV4MaxSkew of now with a secret that creds
// knows, and answers who signed it. Errors wrap one of errSigMissing,
// errSigMalformed, errSigUnknownKey, errSigExpired or errSigMismatch.
func verifySigV4(r *http.Request, body []byte, creds sigV4Credentials, now time.Time) (sigV4Identity, error) {
	auth, err := parseSigV4Request(r)
	if err != nil {
		return sigV4Identity{}, err
	}
	if skew := now.Sub(auth.signedAt); skew > sigV4MaxSkew || skew < -sigV4MaxSkew {
		return sigV4Identity{}, fmt.Errorf("%w: X-Amz-Date %s is more than %v from server time %s",
			errSigExpired, auth.amzDate, sigV4MaxSkew, now.UTC().Format(sigV4DateFormat))
	}
	secret, ok := creds(auth.accessKeyID)
	if !ok {
		return sigV4Identity{}, fmt.Errorf("%w: %q", errSigUnknownKey, auth.accessKeyID)
	}
	payloadHash, err := sigV4PayloadHash(r, body)
	if err != nil {
		return sigV4Identity{}, err
	}
	canonical, err := sigV4CanonicalRequest(r, auth.signedHeaders, payloadHash)
	if err != nil {
		return sigV4Identity{}, err
	}
	want := sigV4HMAC(sigV4SigningKey(secret, auth), sigV4StringToSign(auth.amzDate, auth.scope, canonical))
	if !hmac.Equal(want, auth.signature) {
		return sigV4Identity{}, fmt.Errorf("%w: for access key id %q", errSigMismatch, auth.accessKeyID)
	}
	return sigV4Identity{AccessKeyID: auth.accessKeyID, Region: auth.region}, nil
}

// parseSigV4Request parses r's Authorization header and X-Amz-Date and
// checks that they agree and that every x-amz-* header r has is signed.
func parseSigV4Request(r *http.Request) (sigV4Auth, error) {
	auth, err := parseSigV4Authorization(r.Header.Values("Authorization"))
	if err != nil {
		return sigV4Auth{}, err
	}
	if auth.amzDate, auth.signedAt, err = parseSigV4Date(r.Header.Values("X-Amz-Date")); err != nil {
		return sigV4Auth{}, err
	}
	if auth.date != auth.amzDate[:8] {
		return sigV4Auth{}, fmt.Errorf("%w: credential scope date %s is not the date of X-Amz-Date %s", errSigMalformed, auth.date, auth.amzDate)
	}
	if err := checkSigV4AmzHeadersSigned(r.Header, auth.signedHeaders); err != nil {
		return sigV4Auth{}, err
	}
	return auth, nil
}

// parseSigV4Authorization parses the Authorization header's values: one
// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...",
// whose components may come in any order, with or without spaces after
// the commas.
func parseSigV4Authorization(values []string) (sigV4Auth, error) {
	if len(values) == 0 || values[0] == "" {
		return sigV4Auth{}, fmt.Errorf("%w: no Authorization header", errSigMissing)
	}
	scheme, params, _ := strings.Cut(values[0], " ")
	if scheme != sigV4Algorithm {
		return sigV4Auth{}, fmt.Errorf("%w: Authorization scheme is not %s", errSigMissing, sigV4Algorithm)
	}
	if len(values) > 1 {
		return sigV4Auth{}, fmt.Errorf("%w: %d Authorization headers", errSigMalformed, len(values))
	}
	if len(values[0]) > sigV4MaxAuthLen {
		return sigV4Auth{}, fmt.Errorf("%w: Authorization header longer than %d bytes", errSigMalformed, sigV4MaxAuthLen)
	}
	fields, err := sigV4AuthFields(params)
	if err != nil {
		return sigV4Auth{}, err
	}
	var auth sigV4Auth
	if err := auth.parseCredential(fields["Credential"]); err != nil {
		return sigV4Auth{}, err
	}
	if auth.signedHeaders, err = parseSigV4SignedHeaders(fields["SignedHeaders"]); err != nil {
		return sigV4Auth{}, err
	}
	if auth.signature, err = parseSigV4Signature(fields["Signature"]); err != nil {
		return sigV4Auth{}, err
	}
	return auth, nil
}

// sigV4AuthFields splits the Authorization parameters into exactly the
// Credential, SignedHeaders and Signature components, each given once.
func sigV4AuthFields(params string) (map[string]string, error) {
	fields := map[string]string{}
	for part := range strings.SplitSeq(params, ",") {
		part = strings.TrimSpace(part)
		key, value, ok := strings.Cut(part, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: Authorization component %q is not key=value", errSigMalformed, part)
		case key != "Credential" && key != "SignedHeaders" && key != "Signature":
			return nil, fmt.Errorf("%w: unknown Authorization component %q", errSigMalformed, key)
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("%w: Authorization component %s given twice", errSigMalformed, key)
		}
		fields[key] = value
	}
	if len(fields) != 3 {
		return nil, fmt.Errorf("%w: Authorization needs Credential, SignedHeaders and Signature", errSigMalformed)
	}
	return fields, nil
}

// parseCredential fills the access key id and scope from a Credential
// component: <akid>/<yyyymmdd>/<region>/ecr/aws4_request.
func (a *sigV4Auth) parseCredential(cred string) error {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || slices.Contains(parts, "") {
		return fmt.Errorf("%w: Credential %q is not <akid>/<date>/<region>/<service>/%s", errSigMalformed, cred, sigV4Terminator)
	}
	if parts[3] != sigV4Service {
		return fmt.Errorf("%w: credential scope names service %q, not %q", errSigMalformed, parts[3], sigV4Service)
	}
	if parts[4] != sigV4Terminator {
		return fmt.Errorf("%w: credential scope ends in %q, not %q", errSigMalformed, parts[4], sigV4Terminator)
	}
	a.accessKeyID, a.date, a.region = parts[0], parts[1], parts[2]
	a.scope = strings.Join(parts[1:], "/")
	return nil
}

// parseSigV4SignedHeaders parses a SignedHeaders component: at most
// sigV4MaxSignedHeaders lowercase header names, sorted, without
// duplicates, including host and x-amz-date.
func parseSigV4SignedHeaders(s string) ([]string, error) {
	if strings.Count(s, ";") >= sigV4MaxSignedHeaders {
		return nil, fmt.Errorf("%w: more than %d signed headers", errSigMalformed, sigV4MaxSignedHeaders)
	}
	names := strings.Split(s, ";")
	for i, name := range names {
		if !isSigV4HeaderName(name) {
			return nil, fmt.Errorf("%w: signed header %q is not a lowercase header name", errSigMalformed, name)
		}
		if i > 0 && names[i-1] >= name {
			return nil, fmt.Errorf("%w: SignedHeaders %q is not sorted and unique", errSigMalformed, s)
		}
	}
	for _, required := range []string{"host", "x-amz-date"} {
		if _, found := slices.BinarySearch(names, required); !found {
			return nil, fmt.Errorf("%w: SignedHeaders lacks %s", errSigMalformed, required)
		}
	}
	return names, nil
}

// isSigV4HeaderName reports whether name is a non-empty HTTP token
// without uppercase letters.
func isSigV4HeaderName(name string) bool {
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

// parseSigV4Signature decodes a Signature component: 64 hex digits.
func parseSigV4Signature(s string) ([]byte, error) {
	sig, err := hex.DecodeString(s)
	if err != nil || len(sig) != sha256.Size {
		return nil, fmt.Errorf("%w: Signature is not %d hex digits", errSigMalformed, 2*sha256.Size)
	}
	return sig, nil
}

// parseSigV4Date parses the X-Amz-Date header's values: exactly one, in
// the form 20261201T150405Z.
func parseSigV4Date(values []string) (string, time.Time, error) {
	if len(values) != 1 {
		return "", time.Time{}, fmt.Errorf("%w: want one X-Amz-Date header, have %d", errSigMalformed, len(values))
	}
	t, err := time.Parse(sigV4DateFormat, values[0])
	if err != nil || t.Format(sigV4DateFormat) != values[0] {
		return "", time.Time{}, fmt.Errorf("%w: X-Amz-Date %q is not of the form %s", errSigMalformed, values[0], sigV4DateFormat)
	}
	return values[0], t, nil
}

// checkSigV4AmzHeadersSigned checks that every x-amz-* header is among
// the signed ones, so that none (X-Amz-Target, which names the
// operation, above all) can be added to a signed request.
func checkSigV4AmzHeadersSigned(h http.Header, signed []string) error {
	for name := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-") {
			continue
		}
		if _, found := slices.BinarySearch(signed, lower); !found {
			return fmt.Errorf("%w: header %s is not signed", errSigMalformed, name)
		}
	}
	return nil
}

// sigV4PayloadHash answers the payload hash of the canonical request: the
// hex SHA-256 of body, or UNSIGNED-PAYLOAD if X-Amz-Content-Sha256 says
// so. Any other X-Amz-Content-Sha256 must be the body's hash.
func sigV4PayloadHash(r *http.Request, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	claimed := r.Header.Values("X-Amz-Content-Sha256")
	switch {
	case len(claimed) == 0:
		return hash, nil
	case len(claimed) > 1:
		return "", fmt.Errorf("%w: %d X-Amz-Content-Sha256 headers", errSigMalformed, len(claimed))
	case claimed[0] == sigV4UnsignedPayload:
		return sigV4UnsignedPayload, nil
	case claimed[0] != hash:
		return "", fmt.Errorf("%w: X-Amz-Content-Sha256 is not the SHA-256 of the body", errSigMismatch)
	}
	return hash, nil
}

// sigV4CanonicalRequest builds the canonical request of the AWS spec:
// method, URI, query, headers, signed header names and payload hash.
func sigV4CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) (string, error) {
	query, err := sigV4CanonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	headers, err := sigV4CanonicalHeaders(r, signedHeaders)
	if err != nil {
		return "", err
	}
	return strings.Join([]string{
		r.Method,
		sigV4CanonicalURI(r.URL.EscapedPath()),
		query,
		headers,
		strings.Join(signedHeaders, ";"),
		payloadHash,
	}, "\n"), nil
}

// sigV4CanonicalURI normalizes an escaped path as AWS does for every
// service but S3 (no empty, "." or ".." segments; "/" if nothing is
// left) and URI-encodes it once more, keeping the slashes.
func sigV4CanonicalURI(escapedPath string) string {
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
	return sigV4Escape(path, true)
}

// sigV4CanonicalQuery answers the query's parameters URI-encoded, sorted
// by key then value, as key=value joined with "&".
func sigV4CanonicalQuery(rawQuery string) (string, error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("%w: query string: %w", errSigMalformed, err)
	}
	var params [][2]string
	for key, vs := range values {
		for _, v := range vs {
			params = append(params, [2]string{sigV4Escape(key, false), sigV4Escape(v, false)})
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

// sigV4Escape URI-encodes s the AWS way: every byte outside A-Z a-z 0-9
// - _ . ~ (and "/" if keepSlash) becomes %XX, uppercase.
func sigV4Escape(s string, keepSlash bool) string {
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

// sigV4CanonicalHeaders answers a "name:value\n" line for each signed
// header, its values trimmed, runs of spaces collapsed, and joined with
// ",". A signed header the request lacks fails the check.
func sigV4CanonicalHeaders(r *http.Request, signedHeaders []string) (string, error) {
	var b strings.Builder
	for _, name := range signedHeaders {
		values, ok := sigV4HeaderValues(r, name)
		if !ok {
			return "", fmt.Errorf("%w: signed header %s is not in the request", errSigMismatch, name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(sigV4HeaderValue(v))
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// sigV4HeaderValue trims v and collapses its runs of spaces into one.
func sigV4HeaderValue(v string) string {
	v = strings.TrimSpace(v)
	for strings.Contains(v, "  ") {
		v = strings.ReplaceAll(v, "  ", " ")
	}
	return v
}

// sigV4HeaderValues answers the values of header name (lowercase) as the
// client sent them: Go's server keeps Host and Content-Length apart from
// r.Header.
func sigV4HeaderValues(r *http.Request, name string) ([]string, bool) {
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

// sigV4StringToSign is the string the signature is the HMAC of.
func sigV4StringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// sigV4SigningKey derives the signing key of secret for auth's scope.
func sigV4SigningKey(secret string, auth sigV4Auth) []byte {
	key := []byte("AWS4" + secret)
	for _, s := range []string{auth.date, auth.region, sigV4Service, sigV4Terminator} {
		key = sigV4HMAC(key, s)
	}
	return key
}

// sigV4HMAC is HMAC-SHA256 of data with key.
func sigV4HMAC(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
