package request

import (
	"io"
	"net/http"
)

// Body is a request body that counts the bytes read from it and keeps
// the first read error, so that a client's broken body is told apart from
// a store failure and the metrics know the bytes received.
type Body struct {
	rc  io.ReadCloser
	n   int64
	err error
}

// NewBody wraps rc.
func NewBody(rc io.ReadCloser) *Body { return &Body{rc: rc} }

// BodyOf returns r's body as a *Body, wrapping it (and replacing r.Body)
// if the server did not.
func BodyOf(r *http.Request) *Body {
	if b, ok := r.Body.(*Body); ok {
		return b
	}
	b := NewBody(r.Body)
	r.Body = b
	return b
}

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// Close implements io.Closer.
func (b *Body) Close() error { return b.rc.Close() }

// N is the number of bytes read so far.
func (b *Body) N() int64 { return b.n }

// Err is the first read error other than io.EOF, or nil.
func (b *Body) Err() error { return b.err }
