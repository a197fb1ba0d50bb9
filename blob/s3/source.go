package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// objectSource reads ranges of one object, one GET each: the Source of a
// blob.Reader. ctx carries the reader's values, not its deadline: each GET
// has its own.
type objectSource struct {
	s    *Store
	ctx  context.Context
	key  string
	size int64
	// etag pins the version read: a GET of a replaced object fails
	// rather than mixing two versions' frames.
	etag string
}

// ReadAt reads len(p) bytes at off with one ranged GET.
func (o *objectSource) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("blob: s3: negative offset %d", off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := p
	if rest := o.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	if len(want) == 0 {
		return 0, nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(want))-1); err != nil {
		return 0, err
	}
	if o.etag != "" {
		if err := opts.SetMatchETag(o.etag); err != nil {
			return 0, err
		}
	}
	ctx, cancel := o.s.request(o.ctx)
	defer cancel()
	obj, err := o.s.client.GetObject(ctx, o.s.opts.Bucket, o.key, opts)
	if err != nil {
		return 0, mapErr(err, o.key)
	}
	defer obj.Close()
	n, err := io.ReadFull(obj, want)
	if err != nil {
		return n, mapErr(err, o.key)
	}
	if len(want) < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close releases nothing: every GET closed its body.
func (o *objectSource) Close() error { return nil }
