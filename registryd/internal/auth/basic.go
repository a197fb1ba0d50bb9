package auth

// Parsing a request's basic credentials without a copy on the heap: every
// request of an authenticated registry carries them.

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
)

// basicBufSize is the size of the buffers basicAuth decodes in: enough for
// a login token's header; a longer header is decoded on the heap.
const basicBufSize = 512

// basicAuth returns the user and password of the basic credentials of h
// (a request's Authorization header, authorizationHeader), as
// net/http's Request.BasicAuth reads them (the first Authorization header;
// "Basic " in any case, then standard base64 of user:password, cut at the
// first colon), decoded into dec through raw (both basicBufSize long,
// usually on the caller's stack) when they fit. user and password alias
// dec: they are the caller's only while it keeps dec.
func basicAuth(h string, raw, dec []byte) (user, password []byte, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return nil, nil, false
	}
	src := append(raw[:0], h[len(prefix):]...)
	if n := base64.StdEncoding.DecodedLen(len(src)); n > len(dec) {
		dec = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(dec, src)
	if err != nil {
		return nil, nil, false
	}
	user, password, ok = bytes.Cut(dec[:n], []byte{':'})
	if !ok {
		return nil, nil, false
	}
	return user, password, true
}

// authorizationHeader returns r's Authorization header ("" without one),
// looked up by the key as net/http stores it (canonical): what
// Header.Get looks up, without canonicalizing the name on every request.
func authorizationHeader(r *http.Request) string {
	if v := r.Header["Authorization"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// basicHeader is the Authorization header of basic credentials user and
// password, as a client sends it (what a console sign-in is cached
// under, as the same user's requests are).
func basicHeader(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
