package s3

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
)

// Writer is one upload: package blob's writer into the spool, sent to the
// bucket by Commit. Used by one goroutine at a time.
type Writer struct {
	s     *Store
	inner *blob.Writer
	// spooled is the digest committed in the spool but not yet sent
	// (Commit failed to send it): a later Commit of the same digest sends
	// it again.
	spooled digest.Digest
	info    blob.Info
	closed  bool
}

var _ blob.Ingest = (*Writer)(nil)

// NewWriter starts upload id.
func (s *Store) NewWriter(ctx context.Context, id string, o blob.WriterOptions) (*Writer, error) {
	w, err := s.spool.NewWriter(ctx, id, o)
	if err != nil {
		return nil, err
	}
	return &Writer{s: s, inner: w}, nil
}

// ResumeWriter continues upload id from st.
func (s *Store) ResumeWriter(ctx context.Context, id string, st blob.WriterState, o blob.WriterOptions) (*Writer, error) {
	w, err := s.spool.ResumeWriter(ctx, id, st, o)
	if err != nil {
		return nil, err
	}
	return &Writer{s: s, inner: w}, nil
}

// Write appends p.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed || w.spooled != "" {
		return 0, blob.ErrWriterClosed
	}
	return w.inner.Write(p)
}

// ReadFrom appends r's bytes.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.closed || w.spooled != "" {
		return 0, blob.ErrWriterClosed
	}
	return w.inner.ReadFrom(r)
}

// Size is the number of bytes written.
func (w *Writer) Size() int64 { return w.inner.Size() }

// Checkpoint makes what was written durable in the spool.
func (w *Writer) Checkpoint(ctx context.Context) (blob.WriterState, error) {
	if w.closed || w.spooled != "" {
		return blob.WriterState{}, blob.ErrWriterClosed
	}
	return w.inner.Checkpoint(ctx)
}

// Commit checks size and digest (in the spool, as the file store does),
// then sends the blob to its key and removes the spool copy. When sending
// fails (ErrUnavailable) the writer stays open: a Commit with the same
// digest sends again; Cancel removes the spool copy.
func (w *Writer) Commit(ctx context.Context, expected digest.Digest, size int64) (blob.Info, error) {
	if w.closed {
		return blob.Info{}, blob.ErrWriterClosed
	}
	if w.spooled == "" {
		info, err := w.inner.Commit(ctx, expected, size)
		if err != nil {
			return blob.Info{}, err
		}
		w.spooled, w.info = expected, info
	} else if expected != w.spooled || size >= 0 && size != w.info.Size {
		return blob.Info{}, fmt.Errorf("%w: the upload was committed as %s", blob.ErrDigestMismatch, w.spooled)
	}
	if err := w.s.send(ctx, w.spooled, w.info); err != nil {
		return blob.Info{}, err
	}
	w.closed = true
	info := w.info
	info.ModTime = timeNow()
	_ = w.s.spool.Delete(ctx, w.spooled)
	return info, nil
}

// Cancel abandons the upload.
func (w *Writer) Cancel() error {
	if w.spooled != "" && !w.closed {
		w.closed = true
		return w.s.spool.Delete(context.Background(), w.spooled)
	}
	w.closed = true
	return w.inner.Cancel()
}

// Close keeps the upload's spool files for a resume.
func (w *Writer) Close() error {
	if w.spooled != "" && !w.closed {
		// Committed in the spool but never sent: nothing to resume.
		w.closed = true
		return w.s.spool.Delete(context.Background(), w.spooled)
	}
	w.closed = true
	return w.inner.Close()
}

// send uploads the spool's committed file of d to d's key: a single PUT,
// or a multipart upload with parts sent in parallel for large blobs.
func (s *Store) send(ctx context.Context, d digest.Digest, info blob.Info) error {
	key, err := s.Key(d)
	if err != nil {
		return err
	}
	p, err := s.spool.Path(d)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("blob: s3: spool: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("blob: s3: spool: %w", err)
	}
	_, err = s.client.PutObject(ctx, s.opts.Bucket, key, f, st.Size(), putOptions(s.opts.PartSize))
	return mapErr(err, string(d))
}

// Digest is the digest of what was written so far.
func (w *Writer) Digest() digest.Digest { return w.inner.Digest() }

// Verify checks what was written against d and size without committing.
func (w *Writer) Verify(d digest.Digest, size int64) error { return w.inner.Verify(d, size) }
