package s3

import (
	"context"
	"io"
	"strings"
	"sync"

	"github.com/berthstore/berth/blob"
)

// background sends an upload's parts while its bytes still arrive: as
// soon as the spool file holds a whole part past the head (complete
// frames are final once written, see blob.Writer.Written), it goes to
// the staging object's multipart upload, so that a Checkpoint or a
// Commit finds most of its parts sent already and waits only for the
// last ones. Parts it sent are not in any recorded state until a
// Checkpoint or Commit adopts them; a writer that stops before (a crash,
// Close) leaves them to be overwritten by a resume or removed with the
// upload, as parts of a checkpoint that was never recorded are.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc
	f      blob.Source
	size   int64 // part size
	next   int64 // file offset of the next part to send
	num    int   // its part number
	sem    chan struct{}
	wg     sync.WaitGroup
	ready  chan struct{} // closed once head and mpu are set (or failed)

	mu    sync.Mutex
	mpu   string           // the multipart upload the parts went to
	crc   bool             // created with CRC32C (see remoteState.CRC)
	parts map[int]sentPart // by part number
}

// sentPart is a part the background sent: its bytes, ETag and CRC32C.
type sentPart struct {
	off, size int64
	etag, sum string
}

// openName is an empty object that the background sender puts beside a
// staging upload before it starts one.
const openName = "open"

// partSize is the size of w's parts: the recorded one once a part was
// sent, the store's otherwise.
func (w *Writer) partSize() int64 {
	if w.rs.Sent > 0 {
		return w.rs.PartSize
	}
	return int64(w.s.opts.PartSize)
}

// poll starts sending the whole parts the spool file holds that are not
// sent yet. Called between reads of the body; costs an atomic load when
// there is nothing to send.
func (w *Writer) poll() {
	size := w.partSize()
	written := w.inner.Written()
	bg := w.bg
	if bg == nil {
		first := max(w.rs.Sent, size)
		if written < first+size {
			return
		}
		f, err := w.s.spool.UploadFile(w.id)
		if err != nil {
			return // Checkpoint and Commit send everything themselves
		}
		bg = &background{f: f, size: size, next: first, num: len(w.rs.Parts) + 2, sem: make(chan struct{}, partsInFlight),
			ready: make(chan struct{}), parts: map[int]sentPart{}, mpu: w.rs.MPU, crc: w.rs.MPU == "" || w.rs.CRC}
		bg.ctx, bg.cancel = context.WithCancel(context.Background())
		w.bg = bg
		needMPU := w.rs.MPU == ""
		bg.wg.Add(1)
		go func() {
			defer bg.wg.Done()
			defer close(bg.ready)
			if needMPU {
				// An object beside the staging upload before it starts:
				// gc finds staging uploads by the objects beside them.
				if _, err := w.s.putSmall(bg.ctx, w.s.uploadKey(w.id, openName), strings.NewReader(""), 0); err != nil {
					return
				}
			}
			if needMPU {
				rctx, cancel := w.s.request(bg.ctx)
				mpu, err := w.s.core.NewMultipartUpload(rctx, w.s.opts.Bucket, w.s.dataKey(w.id), checksummedUpload())
				cancel()
				if err != nil {
					return
				}
				bg.mu.Lock()
				bg.mpu = mpu
				bg.mu.Unlock()
			}
		}()
	}
	for written >= bg.next+bg.size && bg.num <= maxParts-1 {
		bg.queue(w, bg.size)
	}
}

// flush queues what the spool file holds past the parts the background
// took, up to end (a checkpoint's), as Checkpoint plans it: whole parts,
// then the rest as a smaller part when that is at least S3's minimum.
// They go out beside the parts still in flight instead of after them.
func (w *Writer) flush(end int64) {
	bg := w.bg
	if bg == nil {
		return
	}
	for end-bg.next >= bg.size && bg.num <= maxParts-1 {
		bg.queue(w, bg.size)
	}
	if rest := end - bg.next; rest >= minPartSize && bg.num <= maxParts-1 {
		bg.queue(w, rest)
	}
}

// queue sends the next size bytes as the next part.
func (bg *background) queue(w *Writer, size int64) {
	off, num := bg.next, bg.num
	bg.next += size
	bg.num++
	bg.wg.Add(1)
	go func() {
		defer bg.wg.Done()
		<-bg.ready
		bg.mu.Lock()
		mpu := bg.mpu
		bg.mu.Unlock()
		if mpu == "" {
			return
		}
		select {
		case bg.sem <- struct{}{}:
		case <-bg.ctx.Done():
			return
		}
		defer func() { <-bg.sem }()
		rctx, cancel := w.s.bodyRequest(bg.ctx, size)
		defer cancel()
		etag, sum, err := w.s.sendPart(rctx, w.s.dataKey(w.id), mpu, bg.crc, num, io.NewSectionReader(bg.f, off, size))
		if err != nil {
			return // sent again by the Checkpoint or Commit that needs it
		}
		bg.mu.Lock()
		bg.parts[num] = sentPart{off: off, size: size, etag: etag, sum: sum}
		bg.mu.Unlock()
	}()
}

// adopt waits for the parts being sent in the background and takes the
// multipart upload they went to into rs when rs has none. The head object
// is the Checkpoint's to send (a Commit needs none: it sends part 1 from
// the spool file).
func (w *Writer) adopt(rs *remoteState, commit bool) {
	bg := w.bg
	if bg == nil {
		return
	}
	bg.wg.Wait()
	if rs.MPU == "" {
		rs.MPU, rs.CRC = bg.mpu, bg.crc
	}
	if commit && rs.Sent == 0 && rs.MPU != "" {
		// Bytes [0, size) are part 1, sent at commit from the spool file
		// with the final header; no head object is needed.
		rs.PartSize, rs.Sent = bg.size, bg.size
	}
}

// sentAlready fills in the ETags of parts that went in the background
// (to rs's multipart upload, the same bytes).
func (w *Writer) sentAlready(rs *remoteState, parts []part) {
	bg := w.bg
	if bg == nil || rs.MPU == "" || rs.MPU != bg.mpu || rs.PartSize != bg.size {
		return
	}
	for i := range parts {
		p := &parts[i]
		if sp, ok := bg.parts[p.num]; ok && p.etag == "" && p.size == sp.size && p.off == sp.off {
			p.etag, p.sum = sp.etag, sp.sum
		}
	}
}

// stopBackground stops sending in the background and waits for it.
func (w *Writer) stopBackground() {
	if bg := w.bg; bg != nil {
		bg.cancel()
		bg.wg.Wait()
		bg.f.Close()
	}
}
