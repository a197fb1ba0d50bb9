package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/berthstore/berth/blob"
)

// remoteState is the object store's part of an upload's checkpoint
// (blob.WriterState.Backend): where in the bucket the bytes the
// checkpoint made durable are, so that any replica can continue the
// upload. Bytes [0, PartSize) of the stored file are the head object
// (re-sent as part 1 at commit, with the final header), the following
// ones parts of the staging object's multipart upload (part i+2 is
// Parts[i], Sizes[i] bytes: PartSize, or what a checkpoint had past the
// last whole part when that is at least S3's minimum part), and the rest
// of the complete frames, with the partial frame, the side object.
type remoteState struct {
	// Spool is the Store instance whose spool file holds the upload (a
	// resume there reads its own file instead of the side object).
	Spool string `json:"spool"`
	// Hole: that spool file lacks the stored bytes [HeaderSize, Hole)
	// other than the frame heads (it was rebuilt from the side object).
	Hole int64 `json:"hole,omitempty"`
	// Sent: the stored bytes [0, Sent) are in the head object and parts.
	Sent int64 `json:"sent,omitempty"`
	// PartSize is the size of the head object and of every part.
	PartSize int64 `json:"partSize,omitempty"`
	// Head is the head object's ETag.
	Head string `json:"head,omitempty"`
	// MPU is the staging object's multipart upload id; Parts the ETags
	// of its parts 2, 3, ...
	MPU   string   `json:"mpu,omitempty"`
	Parts []string `json:"parts,omitempty"`
	// Sizes are the sizes of Parts (absent: all PartSize).
	Sizes []int64 `json:"sizes,omitempty"`
	// CRC: MPU was created with CRC32C as its checksum algorithm, and
	// Sums are the CRC32Cs of Parts, completed with them. A state
	// without it (written before parts carried checksums) sends and
	// completes its parts without.
	CRC  bool     `json:"crc32c,omitempty"`
	Sums []string `json:"sums,omitempty"`
	// Side is the ETag of this checkpoint's side object, in slot
	// SideSlot, SideLen bytes long.
	Side     string `json:"side,omitempty"`
	SideSlot uint8  `json:"sideSlot,omitempty"`
	SideLen  int64  `json:"sideLen,omitempty"`
}

// maxParts is S3's limit of parts in one multipart upload.
const maxParts = 10000

// minPartSize is S3's smallest part but the last.
const minPartSize = 5 << 20

// parseRemote reads the object store's state of st; ok is false for a
// state without one (a checkpoint of a spool-only writer).
func parseRemote(st blob.WriterState) (rs remoteState, ok bool, err error) {
	if len(st.Backend) == 0 {
		return rs, false, nil
	}
	if err := json.Unmarshal(st.Backend, &rs); err != nil {
		return rs, false, fmt.Errorf("%w: object store state: %v", blob.ErrBadState, err)
	}
	if err := rs.check(st); err != nil {
		return rs, false, err
	}
	return rs, true, nil
}

// check refuses a state that does not describe st.
func (rs *remoteState) check(st blob.WriterState) error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: object store state: %s", blob.ErrBadState, fmt.Sprintf(f, a...))
	}
	switch {
	case rs.Side == "" || rs.SideSlot > 1 || rs.SideLen <= 0:
		return bad("no side object")
	case rs.Sent < 0 || rs.Sent > st.End || rs.Hole < 0 || rs.Hole > rs.Sent:
		return bad("sent %d, hole %d, end %d", rs.Sent, rs.Hole, st.End)
	case rs.Sent == 0 && (rs.Head != "" || rs.MPU != "" || len(rs.Parts) > 0):
		return bad("parts without bytes sent")
	case rs.Sent > 0 && (rs.PartSize < 5<<20 || rs.PartSize > 5<<30 || rs.Head == ""):
		return bad("part size %d", rs.PartSize)
	case (rs.MPU == "") != (len(rs.Parts) == 0) || len(rs.Parts) > maxParts-2:
		return bad("%d parts", len(rs.Parts))
	case len(rs.Sizes) != 0 && len(rs.Sizes) != len(rs.Parts):
		return bad("%d sizes for %d parts", len(rs.Sizes), len(rs.Parts))
	case rs.CRC && len(rs.Sums) != len(rs.Parts) || !rs.CRC && len(rs.Sums) != 0:
		return bad("%d checksums for %d parts", len(rs.Sums), len(rs.Parts))
	}
	if len(rs.Sizes) == 0 && len(rs.Parts) > 0 {
		rs.Sizes = make([]int64, len(rs.Parts))
		for i := range rs.Sizes {
			rs.Sizes[i] = rs.PartSize
		}
	}
	sum := rs.PartSize
	for _, n := range rs.Sizes {
		if n < minPartSize || n > 5<<30 {
			return bad("part of %d bytes", n)
		}
		sum += n
	}
	if rs.Sent > 0 && rs.Sent != sum {
		return bad("sent %d with parts adding up to %d", rs.Sent, sum)
	}
	return nil
}

// uploadKey is the key of one of upload id's objects (head, side0,
// side1, data).
func (s *Store) uploadKey(id, name string) string {
	return s.opts.Prefix + uploadsDir + id + "/" + name
}

// uploadsDir holds, per upload id, the objects of uploads in progress.
const uploadsDir = "uploads/"

// checkUploadID refuses an upload id that is not safe in an object key.
func checkUploadID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: upload id %q", blob.ErrBadState, id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: upload id %q", blob.ErrBadState, id)
		}
	}
	return nil
}

// putSmall PUTs r (size bytes) as key, with its CRC32C, and returns its
// ETag.
func (s *Store) putSmall(ctx context.Context, key string, r io.ReadSeeker, size int64) (string, error) {
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true, DisableContentSha256: true}
	if size > 0 {
		var err error
		if opts.UserMetadata, err = putChecksum(r); err != nil {
			return "", err
		}
	}
	rctx, cancel := s.bodyRequest(ctx, size)
	defer cancel()
	info, err := s.client.PutObject(rctx, s.opts.Bucket, key, r, size, opts)
	if err != nil {
		return "", mapErr(err, key)
	}
	return info.ETag, nil
}

// getPinned reads length bytes at off of key, which must still have
// ETag etag.
func (s *Store) getPinned(ctx context.Context, key, etag string, off, length int64) ([]byte, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+length-1); err != nil {
		return nil, err
	}
	if err := opts.SetMatchETag(etag); err != nil {
		return nil, err
	}
	rctx, cancel := s.bodyRequest(ctx, length)
	defer cancel()
	obj, err := s.client.GetObject(rctx, s.opts.Bucket, key, opts)
	if err != nil {
		return nil, mapPinned(err, key)
	}
	defer obj.Close()
	b := make([]byte, length)
	if _, err := io.ReadFull(obj, b); err != nil {
		return nil, mapPinned(err, key)
	}
	return b, nil
}

// mapPinned is mapErr for an object read at a recorded version: a
// missing or replaced one means the upload's state no longer matches
// the bucket (ErrBadState), not a transient failure.
func mapPinned(err error, key string) error {
	switch minio.ToErrorResponse(err).Code {
	case "PreconditionFailed", "NoSuchKey", "NotFound", "InvalidRange":
		return fmt.Errorf("%w: %s no longer holds the upload's bytes: %v", blob.ErrBadState, key, err)
	}
	return mapErr(err, key)
}

// bodyRequest is ctx bounded by the request timeout plus the time to
// move size bytes at 10 MiB/s.
func (s *Store) bodyRequest(ctx context.Context, size int64) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.RequestTimeout+timeFor(size))
}

// part is one part of a multipart upload to send: once sent, its ETag
// and CRC32C.
type part struct {
	num  int
	data io.ReaderAt
	off  int64
	size int64
	etag string
	sum  string
}

// putParts uploads the parts without an ETag of upload mpu of key,
// partsInFlight at a time, and sets their ETags and, when the upload was
// created with CRC32C (crc), their CRC32Cs.
func (s *Store) putParts(ctx context.Context, key, mpu string, crc bool, parts []part) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, partsInFlight)
	)
	for i := range parts {
		p := &parts[i]
		if p.etag != "" {
			continue // sent already
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rctx, cancel := s.bodyRequest(ctx, p.size)
			defer cancel()
			etag, sum, err := s.sendPart(rctx, key, mpu, crc, p.num, io.NewSectionReader(p.data, p.off, p.size))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = mapErr(err, key+" part "+strconv.Itoa(p.num))
				}
				return
			}
			p.etag, p.sum = etag, sum
		}()
	}
	wg.Wait()
	return first
}

// partsInFlight is how many parts one upload sends at a time.
const partsInFlight = 4

// removeRemote aborts upload id's multipart upload and deletes its
// objects: its staging object too, unless the upload was committed
// (committed, or its marker names a blob that refers to the staging
// object: a commit stopped before its clean-up). A missing one is not an
// error. The marker goes last, so that a removal stopped half way is
// found and finished by the next.
func (s *Store) removeRemote(ctx context.Context, id string, committed bool) error {
	if err := checkUploadID(id); err != nil {
		return err
	}
	dir := s.opts.Prefix + uploadsDir + id + "/"
	data := s.dataKey(id)
	var errs []error
	// The staging object's key exactly: MinIO lists multipart uploads of
	// one object only, not of a prefix.
	for mu := range s.client.ListIncompleteUploads(ctx, s.opts.Bucket, data, false) {
		if mu.Err != nil {
			errs = append(errs, mapErr(mu.Err, "listing "+dir))
			break
		}
		rctx, cancel := s.request(ctx)
		err := s.core.AbortMultipartUpload(rctx, s.opts.Bucket, mu.Key, mu.UploadID)
		cancel()
		if err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
			errs = append(errs, mapErr(err, mu.Key))
		}
	}
	if !committed {
		linked, err := s.linkedTo(ctx, id)
		if err != nil {
			return err // keep everything until the marker can be read
		}
		if !linked {
			rctx, cancel := s.request(ctx)
			err := s.client.RemoveObject(rctx, s.opts.Bucket, data, minio.RemoveObjectOptions{})
			cancel()
			if err != nil && !isNotFound(err) {
				errs = append(errs, mapErr(err, data))
			}
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	marker := s.uploadKey(id, markerName)
	hasMarker := false
	for oi := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if oi.Err != nil {
			errs = append(errs, mapErr(oi.Err, "listing "+dir))
			break
		}
		if oi.Key == marker {
			hasMarker = true
			continue
		}
		rctx, cancel := s.request(ctx)
		err := s.client.RemoveObject(rctx, s.opts.Bucket, oi.Key, minio.RemoveObjectOptions{})
		cancel()
		if err != nil && !isNotFound(err) {
			errs = append(errs, mapErr(err, oi.Key))
		}
	}
	if hasMarker && len(errs) == 0 {
		rctx, cancel := s.request(ctx)
		err := s.client.RemoveObject(rctx, s.opts.Bucket, marker, minio.RemoveObjectOptions{})
		cancel()
		if err != nil && !isNotFound(err) {
			errs = append(errs, mapErr(err, marker))
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func isNotFound(err error) bool {
	c := minio.ToErrorResponse(err).Code
	return c == "NoSuchKey" || c == "NotFound"
}

// remoteUploads lists the ids of uploads with objects or multipart
// uploads in the bucket, with when each was last written.
func (s *Store) remoteUploads(ctx context.Context) (map[string]int64, error) {
	dir := s.opts.Prefix + uploadsDir
	ids := map[string]int64{}
	note := func(key string, t int64) {
		id, _, ok := strings.Cut(strings.TrimPrefix(key, dir), "/")
		if !ok || checkUploadID(id) != nil {
			return
		}
		if cur, seen := ids[id]; !seen || t > cur {
			ids[id] = t
		}
	}
	for oi := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if oi.Err != nil {
			return nil, mapErr(oi.Err, "listing "+dir)
		}
		note(oi.Key, oi.LastModified.UnixNano())
	}
	// Multipart uploads without any object beside them (AWS lists them
	// by prefix; MinIO only by object, and there every staging upload has
	// its head object or open object beside it, written before the
	// upload starts and deleted after it is aborted).
	staging := s.opts.Prefix + dataDir
	for mu := range s.client.ListIncompleteUploads(ctx, s.opts.Bucket, staging, true) {
		if mu.Err != nil {
			if minio.ToErrorResponse(mu.Err).StatusCode == 501 {
				break
			}
			return nil, mapErr(mu.Err, "listing uploads of "+staging)
		}
		note(dir+strings.TrimPrefix(mu.Key, staging)+"/", mu.Initiated.UnixNano())
	}
	return ids, nil
}

// remoteUploadsOf is the latest time of upload id's objects and
// multipart uploads (zero: it has none).
func (s *Store) remoteUploadsOf(ctx context.Context, id string) (time.Time, error) {
	dir := s.opts.Prefix + uploadsDir + id + "/"
	var last time.Time
	for oi := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if oi.Err != nil {
			return time.Time{}, mapErr(oi.Err, "listing "+dir)
		}
		if oi.LastModified.After(last) {
			last = oi.LastModified
		}
	}
	for mu := range s.client.ListIncompleteUploads(ctx, s.opts.Bucket, s.dataKey(id), false) {
		if mu.Err != nil {
			return time.Time{}, mapErr(mu.Err, "listing uploads of "+dir)
		}
		if mu.Initiated.After(last) {
			last = mu.Initiated
		}
	}
	return last, nil
}

// bytesReader is b as an io.ReaderAt and io.Reader.
func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// readSide fetches and parses the side object rs names.
func (s *Store) readSide(ctx context.Context, id string, rs remoteState) (blob.UploadImage, error) {
	b, err := s.getPinned(ctx, s.uploadKey(id, sideName(rs.SideSlot)), rs.Side, 0, rs.SideLen)
	if err != nil {
		return blob.UploadImage{}, err
	}
	im, err := decodeSide(b)
	if err != nil {
		return im, err
	}
	if im.From != rs.Sent {
		return im, fmt.Errorf("%w: side object starts at %d, %d bytes were sent", blob.ErrBadState, im.From, rs.Sent)
	}
	return im, nil
}

func sideName(slot uint8) string { return "side" + strconv.Itoa(int(slot&1)) }

// timeFor is how long size bytes may take to move, at 10 MiB/s.
func timeFor(size int64) time.Duration { return time.Duration(size/(10<<20)) * time.Second }
