package s3

import (
	"context"
	"fmt"
	"io"
	"sync"

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
	// ahead reads windows ahead of a sequential reader (nil until one
	// is seen).
	mu    sync.Mutex
	ends  [8]int64 // ends of the last reads, to see a sequential reader
	nends int
	hits  int
	ahead *readAhead
}

// ReadAt reads len(p) bytes at off: with one ranged GET, or, once reads
// follow each other (a pull), from windows fetched ahead.
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
	if ra := o.sequential(off, int64(len(want))); ra != nil {
		if err := ra.read(want, off); err != nil {
			return 0, err
		}
		if len(want) < len(p) {
			return len(want), io.EOF
		}
		return len(want), nil
	}
	return o.get(p, want, off)
}

// get reads want at off with one ranged GET.
func (o *objectSource) get(p, want []byte, off int64) (int, error) {
	return o.getCtx(o.ctx, p, want, off)
}

// getCtx is get under ctx.
func (o *objectSource) getCtx(ctx context.Context, p, want []byte, off int64) (int, error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+int64(len(want))-1); err != nil {
		return 0, err
	}
	if o.etag != "" {
		if err := opts.SetMatchETag(o.etag); err != nil {
			return 0, err
		}
	}
	ctx, cancel := o.s.bodyRequest(ctx, int64(len(want)))
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

// sequential notes a read of n bytes at off and returns the read-ahead
// when the read starts where an earlier one ended (and the object is
// large enough for windows to pay).
func (o *objectSource) sequential(off, n int64) *readAhead {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ahead != nil {
		if o.ahead.near(off) {
			return o.ahead
		}
		return nil // a jump: read just what is asked
	}
	seq := false
	for i := 0; i < min(o.nends, len(o.ends)); i++ {
		if o.ends[i] == off {
			seq = true
		}
	}
	o.ends[o.nends%len(o.ends)] = off + n
	o.nends++
	if seq {
		o.hits++
	}
	// Two reads in a row that continue earlier ones (the header then
	// frame 0 is one): a reader going through the object.
	if o.hits < 2 || o.size < 2*aheadWindow {
		return nil
	}
	ctx, cancel := context.WithCancel(o.ctx)
	o.ahead = &readAhead{o: o, ctx: ctx, cancel: cancel, wins: map[int64]*window{}}
	return o.ahead
}

// Close stops the windows being fetched ahead.
func (o *objectSource) Close() error {
	o.mu.Lock()
	ra := o.ahead
	o.mu.Unlock()
	if ra != nil {
		ra.cancel()
	}
	return nil
}

// Read-ahead of a sequential reader: the object in aligned windows of
// aheadWindow bytes, the one being read and aheadWindows after it fetched
// at once (each one GET), the ones behind dropped.
const (
	aheadWindow  = 4 << 20
	aheadWindows = 3
)

type readAhead struct {
	o      *objectSource
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	wins   map[int64]*window
}

// window is one fetched range of the object.
type window struct {
	data []byte
	err  error
	done chan struct{}
}

// near reports whether a read at off is one of the sequential reader's:
// in a window being fetched or just after one.
func (ra *readAhead) near(off int64) bool {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	idx := off / aheadWindow
	return ra.wins[idx] != nil || ra.wins[idx-1] != nil
}

// read copies len(p) bytes at off out of the windows under them.
func (ra *readAhead) read(p []byte, off int64) error {
	for len(p) > 0 {
		idx := off / aheadWindow
		w := ra.window(idx)
		<-w.done
		if w.err != nil {
			return w.err
		}
		c := copy(p, w.data[off-idx*aheadWindow:])
		p, off = p[c:], off+int64(c)
	}
	return nil
}

// window returns window idx, fetching it and the ones after it as
// needed, and drops the ones before it.
func (ra *readAhead) window(idx int64) *window {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for i := range ra.wins {
		if i < idx-1 {
			delete(ra.wins, i)
		}
	}
	last := (ra.o.size - 1) / aheadWindow
	for i := idx; i <= min(idx+aheadWindows, last); i++ {
		if ra.wins[i] == nil {
			w := &window{done: make(chan struct{})}
			ra.wins[i] = w
			from := i * aheadWindow
			n := min(aheadWindow, ra.o.size-from)
			go func() {
				defer close(w.done)
				buf := make([]byte, n)
				_, w.err = ra.o.getCtx(ra.ctx, buf, buf, from)
				if w.err == nil {
					w.data = buf
				}
			}()
		}
	}
	return ra.wins[idx]
}
