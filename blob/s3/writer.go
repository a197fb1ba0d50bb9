package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berthstore/berth/blob"
)

// Writer is one upload: package blob's writer into the spool; each
// Checkpoint sends what it made durable to the bucket (see remoteState),
// so that any replica can continue the upload from the checkpoint, and
// Commit completes the object. Used by one goroutine at a time.
type Writer struct {
	s     *Store
	id    string
	alg   digest.Algorithm
	inner *blob.Writer
	// rs is the bucket's state of the upload as of the last Checkpoint
	// (Side empty: nothing sent yet).
	rs remoteState
	// spooled is the digest committed in the spool but not yet sent
	// (Commit failed to send it): a later Commit of the same digest sends
	// it again.
	spooled digest.Digest
	// completed is the ETag of the staging object once its multipart
	// upload is complete (a Commit sent again only links it).
	completed string
	info      blob.Info
	closed    bool
	// bg sends parts while the bytes arrive (nil until a whole part is
	// there).
	bg *background
}

var _ blob.Ingest = (*Writer)(nil)

// NewWriter starts upload id.
func (s *Store) NewWriter(ctx context.Context, id string, o blob.WriterOptions) (*Writer, error) {
	if err := checkUploadID(id); err != nil {
		return nil, err
	}
	w, err := s.spool.NewWriter(ctx, id, o)
	if err != nil {
		return nil, err
	}
	return &Writer{s: s, id: id, alg: w.Algorithm(), inner: w, rs: remoteState{Spool: s.instance}}, nil
}

// ResumeWriter continues upload id from st: from this process's spool
// file when it wrote st, otherwise from the bucket (the side object
// rebuilds the spool file's tail; the parts stay where they are).
func (s *Store) ResumeWriter(ctx context.Context, id string, st blob.WriterState, o blob.WriterOptions) (*Writer, error) {
	if err := checkUploadID(id); err != nil {
		return nil, err
	}
	rs, remote, err := parseRemote(st)
	if err != nil {
		return nil, err
	}
	if !remote || rs.Spool == s.instance {
		w, err := s.spool.ResumeWriter(ctx, id, st, o)
		if err == nil || !remote || !errors.Is(err, blob.ErrBadState) {
			if err != nil {
				return nil, err
			}
			return &Writer{s: s, id: id, alg: w.Algorithm(), inner: w, rs: rs}, nil
		}
	}
	im, err := s.readSide(ctx, id, rs)
	if err != nil {
		return nil, err
	}
	if err := s.spool.RestoreUpload(id, st, im); err != nil {
		return nil, err
	}
	w, err := s.spool.ResumeWriter(ctx, id, st, o)
	if err != nil {
		_ = s.spool.RemoveUpload(id)
		return nil, err
	}
	rs.Spool, rs.Hole = s.instance, rs.Sent
	return &Writer{s: s, id: id, alg: w.Algorithm(), inner: w, rs: rs}, nil
}

// Write appends p.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed || w.spooled != "" {
		return 0, blob.ErrWriterClosed
	}
	n, err := w.inner.Write(p)
	w.poll()
	return n, err
}

// ReadFrom appends r's bytes.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.closed || w.spooled != "" {
		return 0, blob.ErrWriterClosed
	}
	return w.inner.ReadFrom(pollingReader{r: r, w: w})
}

// pollingReader is a request body that lets its writer start sending
// parts between reads.
type pollingReader struct {
	r io.Reader
	w *Writer
}

func (p pollingReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.w.poll()
	return n, err
}

// Size is the number of bytes written.
func (w *Writer) Size() int64 { return w.inner.Size() }

// Checkpoint makes what was written durable in the spool and in the
// bucket: every whole PartSize of stored bytes not sent yet goes out as
// the head object or a part of the staging object, the rest as this
// checkpoint's side object. The state returned names all of them.
func (w *Writer) Checkpoint(ctx context.Context) (blob.WriterState, error) {
	if w.closed || w.spooled != "" {
		return blob.WriterState{}, blob.ErrWriterClosed
	}
	st, err := w.inner.Checkpoint(ctx)
	if err != nil {
		return st, err
	}
	f, err := w.s.spool.UploadFile(w.id)
	if err != nil {
		return blob.WriterState{}, err
	}
	defer f.Close()
	// Plan what goes where, then send the head, the parts and the side
	// object at once: the checkpoint waits for the slowest, not the sum.
	// The parts past those the background took join them there (flush),
	// so they do not wait for the parts in flight before they start.
	rs := w.rs
	rs.Parts = append([]string(nil), w.rs.Parts...)
	rs.Sizes = append([]int64(nil), w.rs.Sizes...)
	rs.Sums = append([]string(nil), w.rs.Sums...)
	w.flush(st.End)
	newHead := rs.Sent == 0 && st.End >= int64(w.s.opts.PartSize)
	if newHead {
		rs.PartSize = int64(w.s.opts.PartSize)
		rs.Sent = rs.PartSize
	}
	var parts []part
	for rs.Sent > 0 && st.End-rs.Sent >= rs.PartSize {
		parts = append(parts, part{num: len(rs.Parts) + len(parts) + 2, data: f, off: rs.Sent, size: rs.PartSize})
		rs.Sent += rs.PartSize
	}
	if rest := st.End - rs.Sent; rs.Sent > 0 && rest >= minPartSize {
		// What is past the last whole part goes as a smaller part, not
		// in the side object (which would carry it again at every
		// checkpoint until a whole part is there).
		parts = append(parts, part{num: len(rs.Parts) + len(parts) + 2, data: f, off: rs.Sent, size: rest})
		rs.Sent += rest
	}
	if len(rs.Parts)+len(parts) > maxParts-2 {
		return blob.WriterState{}, fmt.Errorf("%w: more than %d parts", blob.ErrTooLarge, maxParts)
	}
	im := blob.UploadImage{From: rs.Sent, Pending: make([]byte, st.End-rs.Sent)}
	if _, err := f.ReadAt(im.Pending, rs.Sent); err != nil {
		return blob.WriterState{}, fmt.Errorf("blob: s3: upload %s: %w", w.id, err)
	}
	if im.Tail, err = w.s.spool.UploadTail(w.id, st); err != nil {
		return blob.WriterState{}, err
	}
	if rs.Sent > 0 {
		im.Header = make([]byte, blob.HeaderSize)
		if _, err := f.ReadAt(im.Header, 0); err != nil {
			return blob.WriterState{}, fmt.Errorf("blob: s3: upload %s: %w", w.id, err)
		}
		im.Table = w.inner.AppendFrameHeads(nil)
	}
	side := encodeSide(im)
	slot := uint8(0)
	if rs.Side != "" {
		slot = 1 - rs.SideSlot
	}
	var (
		g        errgroup.Group
		etag     string
		headSent = make(chan error, 1)
	)
	if newHead {
		g.Go(func() error {
			var err error
			rs.Head, err = w.s.putSmall(ctx, w.s.uploadKey(w.id, "head"), io.NewSectionReader(f, 0, rs.PartSize), rs.PartSize)
			headSent <- err
			return err
		})
	} else {
		headSent <- nil
	}
	if len(parts) > 0 || w.bg != nil {
		g.Go(func() error {
			w.adopt(&rs, false)
			if len(parts) == 0 {
				return nil
			}
			w.sentAlready(&rs, parts)
			data := w.s.dataKey(w.id)
			if rs.MPU == "" {
				// The head object first: gc finds a staging upload by the
				// objects beside it (MinIO lists uploads per object only).
				if err := <-headSent; err != nil {
					return err
				}
				rctx, cancel := w.s.request(ctx)
				mpu, err := w.s.core.NewMultipartUpload(rctx, w.s.opts.Bucket, data, checksummedUpload())
				cancel()
				if err != nil {
					return mapErr(err, data)
				}
				rs.MPU, rs.CRC = mpu, true
			}
			if err := w.s.putParts(ctx, data, rs.MPU, rs.CRC, parts); err != nil {
				return err
			}
			for _, p := range parts {
				rs.Parts = append(rs.Parts, p.etag)
				rs.Sizes = append(rs.Sizes, p.size)
				if rs.CRC {
					rs.Sums = append(rs.Sums, p.sum)
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		var err error
		etag, err = w.s.putSmall(ctx, w.s.uploadKey(w.id, sideName(slot)), bytesReader(side), int64(len(side)))
		return err
	})
	err = g.Wait()
	if rs.MPU != "" {
		w.rs.MPU, w.rs.CRC = rs.MPU, rs.CRC // kept for Cancel even when this checkpoint fails
	}
	if err != nil {
		return blob.WriterState{}, err
	}
	rs.Side, rs.SideSlot, rs.SideLen, rs.Spool = etag, slot, int64(len(side)), w.s.instance
	if st.Backend, err = json.Marshal(&rs); err != nil {
		return blob.WriterState{}, err
	}
	w.rs = rs
	if w.bg != nil {
		// Sent by this checkpoint: the background goes on from there.
		w.bg.next, w.bg.num = rs.Sent, len(rs.Parts)+2
	}
	return st, nil
}

// Commit checks size and digest (in the spool, as the file store does),
// then makes the blob's object: a PUT of the spool file when no part was
// sent yet, otherwise the staging object's multipart upload completed
// (the head re-sent as part 1 with the final header, the bytes not sent
// yet as the last parts) and copied to its key by the server. When
// sending fails (ErrUnavailable) the writer stays open: a Commit with the
// same digest sends again; Cancel removes everything.
func (w *Writer) Commit(ctx context.Context, expected digest.Digest, size int64) (blob.Info, error) {
	if w.closed {
		return blob.Info{}, blob.ErrWriterClosed
	}
	if w.spooled == "" {
		if err := w.checkAlgorithm(expected); err != nil {
			return blob.Info{}, err
		}
		info, err := w.inner.Commit(ctx, expected, size)
		if err != nil {
			return blob.Info{}, err
		}
		w.spooled, w.info = expected, info
	} else if expected != w.spooled || size >= 0 && size != w.info.Size {
		return blob.Info{}, fmt.Errorf("%w: the upload was committed as %s", blob.ErrDigestMismatch, w.spooled)
	}
	w.adopt(&w.rs, true)
	var err error
	if w.rs.Sent == 0 {
		err = w.s.send(ctx, w.spooled, w.info)
	} else {
		err = w.sendParts(ctx)
	}
	if err != nil {
		return blob.Info{}, err
	}
	w.closed = true
	w.stopBackground()
	info := w.info
	info.ModTime = timeNow()
	_ = w.s.spool.Delete(ctx, w.spooled)
	if w.rs.Side != "" || w.rs.MPU != "" || w.completed != "" || w.bg != nil {
		_ = w.s.removeRemote(context.WithoutCancel(ctx), w.id, w.completed != "")
	}
	return info, nil
}

// checkAlgorithm refuses a digest of another algorithm than the one
// hashed while writing when the spool file lacks bytes sent from another
// replica (hashing again would need them).
func (w *Writer) checkAlgorithm(d digest.Digest) error {
	if w.rs.Hole > 0 && d.Algorithm() != w.alg {
		return fmt.Errorf("%w: %s for an upload hashed as %s and continued on another replica", blob.ErrUnsupportedDigest, d.Algorithm(), w.alg)
	}
	return nil
}

// sendParts completes the staging object from the parts sent, the head
// and the spool file's bytes past the parts, and makes the blob's key a
// reference to it (no copy: see ref.go).
func (w *Writer) sendParts(ctx context.Context) error {
	s, rs := w.s, &w.rs
	key, err := s.Key(w.spooled)
	if err != nil {
		return err
	}
	total := w.info.StoredSize
	if w.completed != "" {
		// Completed by an earlier Commit that failed to link it.
		return s.link(ctx, w.id, key, w.completed, total)
	}
	p, err := s.spool.Path(w.spooled)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("blob: s3: spool: %w", err)
	}
	defer f.Close()
	data := s.dataKey(w.id)
	// Part 1: the final header, then the head object's bytes.
	head := make([]byte, rs.PartSize)
	if _, err := f.ReadAt(head[:blob.HeaderSize], 0); err != nil {
		return fmt.Errorf("blob: s3: spool: %w", err)
	}
	if rs.Hole > 0 {
		b, err := s.getPinned(ctx, s.uploadKey(w.id, "head"), rs.Head, blob.HeaderSize, rs.PartSize-blob.HeaderSize)
		if err != nil {
			return err
		}
		copy(head[blob.HeaderSize:], b)
	} else if _, err := f.ReadAt(head[blob.HeaderSize:], blob.HeaderSize); err != nil {
		return fmt.Errorf("blob: s3: spool: %w", err)
	}
	parts := []part{{num: 1, data: bytesReader(head), size: rs.PartSize}}
	for off := rs.Sent; off < total; off += rs.PartSize {
		parts = append(parts, part{num: len(rs.Parts) + len(parts) + 1, data: f, off: off, size: min(rs.PartSize, total-off)})
	}
	if len(rs.Parts)+len(parts) > maxParts {
		return fmt.Errorf("%w: more than %d parts", blob.ErrTooLarge, maxParts)
	}
	w.sentAlready(rs, parts)
	if rs.MPU == "" {
		rctx, cancel := s.request(ctx)
		rs.MPU, err = s.core.NewMultipartUpload(rctx, s.opts.Bucket, data, checksummedUpload())
		cancel()
		if err != nil {
			return mapErr(err, data)
		}
		rs.CRC = true
	}
	if err := s.putParts(ctx, data, rs.MPU, rs.CRC, parts); err != nil {
		return err
	}
	done := make([]minio.CompletePart, 0, len(rs.Parts)+len(parts))
	for i, etag := range rs.Parts {
		var sum string
		if rs.CRC {
			sum = rs.Sums[i]
		}
		done = append(done, completePart(i+2, etag, sum))
	}
	for _, p := range parts {
		done = append(done, completePart(p.num, p.etag, p.sum))
	}
	sort.Slice(done, func(i, j int) bool { return done[i].PartNumber < done[j].PartNumber })
	rctx, cancel := s.bodyRequest(ctx, total)
	ui, err := s.core.CompleteMultipartUpload(rctx, s.opts.Bucket, data, rs.MPU, done, minio.PutObjectOptions{})
	cancel()
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "InvalidPart" || code == "InvalidPartOrder" || code == "NoSuchUpload" {
			// Another writer replaced a part, or the upload is gone: the
			// recorded state no longer matches the bucket.
			return fmt.Errorf("%w: completing %s: %v", blob.ErrBadState, data, err)
		}
		return mapErr(err, data)
	}
	w.completed = strings.Trim(ui.ETag, `"`)
	rs.MPU, rs.Parts, rs.Sizes, rs.CRC, rs.Sums = "", nil, nil, false, nil
	return s.link(ctx, w.id, key, w.completed, total)
}

// Cancel abandons the upload: its spool files, its parts and objects.
func (w *Writer) Cancel() error {
	w.stopBackground()
	remote := w.rs.Side != "" || w.rs.MPU != "" || w.completed != "" || w.bg != nil
	var err error
	if w.spooled != "" && !w.closed {
		w.closed = true
		err = w.s.spool.Delete(context.Background(), w.spooled)
	} else if !w.closed {
		w.closed = true
		err = w.inner.Cancel()
	} else {
		return nil
	}
	if remote {
		ctx, cancel := context.WithTimeout(context.Background(), 4*w.s.opts.RequestTimeout)
		defer cancel()
		if rerr := w.s.removeRemote(ctx, w.id, false); err == nil {
			err = rerr
		}
	}
	return err
}

// Close keeps the upload's spool files and objects for a resume.
func (w *Writer) Close() error {
	w.stopBackground()
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
	// Only a blob sent in parts (5 MiB at least) can be a reference
	// already: its data object is replaced with it.
	var prev location
	if st.Size() >= 5<<20 {
		prev, _ = s.locate(ctx, key, string(d))
	}
	if err := s.putFile(ctx, key, f, f, st.Size()); err != nil {
		return err
	}
	if prev.ref {
		rctx, cancel := s.request(ctx)
		_ = s.client.RemoveObject(rctx, s.opts.Bucket, prev.key, minio.RemoveObjectOptions{})
		cancel()
	}
	return nil
}

// Digest is the digest of what was written so far.
func (w *Writer) Digest() digest.Digest { return w.inner.Digest() }

// Verify checks what was written against d and size without committing.
func (w *Writer) Verify(d digest.Digest, size int64) error {
	if err := w.checkAlgorithm(d); err != nil {
		return err
	}
	return w.inner.Verify(d, size)
}
