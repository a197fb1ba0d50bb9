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

// basicAuth returns the user and password of r's basic credentials, as
// net/http's Request.BasicAuth reads them (the first Authorization header;
// "Basic " in any case, then standard base64 of user:password, cut at the
// first colon), decoded into dec through raw (both basicBufSize long,
// usually on the caller's stack) when they fit. user and password alias
// dec: they are the caller's only while it keeps dec.
func basicAuth(r *http.Request, raw, dec []byte) (user, password []byte, ok bool) {
	const prefix = "Basic "
	// The key as net/http stores it (canonical): what Header.Get
	// looks up, without canonicalizing the name on every request.
	var h string
	if v := r.Header["Authorization"]; len(v) > 0 {
		h = v[0]
	}
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
