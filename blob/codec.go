package blob

import (
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Level is the zstd level a store compresses new frames at. Reading does
// not depend on it: every level decodes with the same decoder.
type Level int

// The levels, as klauspost/compress names them (roughly zstd's levels 1,
// 3, 7 and 11).
const (
	// LevelFastest is the default: the write path keeps up with pushes
	// (290-350 MB/s a core here).
	LevelFastest Level = iota
	// LevelDefault is zstd's default level.
	LevelDefault
	// LevelBetter compresses better at about half LevelDefault's speed.
	LevelBetter
	// LevelBest compresses best, slowly: for the archive tier, whose
	// blobs are written once, in the background, and rarely read.
	LevelBest
)

func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case LevelDefault:
		return zstd.SpeedDefault
	case LevelBetter:
		return zstd.SpeedBetterCompression
	case LevelBest:
		return zstd.SpeedBestCompression
	}
	return zstd.SpeedFastest
}

// The zstd encoders (one a level) and the decoder are built once and
// shared: EncodeAll and DecodeAll are safe for concurrent use.
var (
	zencOnce [LevelBest + 1]sync.Once
	zenc     [LevelBest + 1]*zstd.Encoder
	zdecOnce sync.Once
	zdec     *zstd.Decoder
)

func encoder(l Level) *zstd.Encoder {
	if l < LevelFastest || l > LevelBest {
		l = LevelFastest
	}
	zencOnce[l].Do(func() {
		opts := []zstd.EOption{
			zstd.WithEncoderLevel(l.zstd()),
			zstd.WithEncoderCRC(false), // frames are sealed or CRC-checked already
			zstd.WithZeroFrames(true),
		}
		if l == LevelBest {
			// Matches as far back as the largest frame: content repeated
			// within a frame (a file vendored twice in a layer) is found
			// whatever its distance.
			opts = append(opts, zstd.WithWindowSize(MaxFrameSize))
		}
		var err error
		zenc[l], err = zstd.NewWriter(nil, opts...)
		if err != nil {
			panic("blob: zstd encoder: " + err.Error()) // options are constant
		}
	})
	return zenc[l]
}

func decoder() *zstd.Decoder {
	zdecOnce.Do(func() {
		var err error
		zdec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(2*MaxFrameSize),
			// DecodeAll stops at the capacity of its destination, which
			// decodePayload sets to the frame's length: a frame that
			// would decode to more fails at once, before it costs
			// memory or time.
			zstd.WithDecodeAllCapLimit(true),
			zstd.IgnoreChecksum(true))
		if err != nil {
			panic("blob: zstd decoder: " + err.Error()) // options are constant
		}
	})
	return zdec
}

// compressedMagic reports whether b starts like an already-compressed
// stream (gzip, zstd, bzip2, xz): such blobs skip zstd entirely.
func compressedMagic(b []byte) bool {
	has := func(m ...byte) bool {
		if len(b) < len(m) {
			return false
		}
		for i, c := range m {
			if b[i] != c {
				return false
			}
		}
		return true
	}
	return has(0x1f, 0x8b) || has(0x28, 0xb5, 0x2f, 0xfd) || has('B', 'Z', 'h') || has(0xfd, '7', 'z', 'X', 'Z', 0)
}

// encoderPool runs frame encoding jobs on a fixed set of goroutines
// shared by every writer of a store.
type encoderPool struct {
	jobs chan func()
	wg   sync.WaitGroup
	once sync.Once
}

func newEncoderPool(n int) *encoderPool {
	p := &encoderPool{jobs: make(chan func(), 256)}
	p.wg.Add(n)
	for range n {
		go func() {
			defer p.wg.Done()
			for f := range p.jobs {
				f()
			}
		}()
	}
	return p
}

func (p *encoderPool) submit(f func()) { p.jobs <- f }

func (p *encoderPool) close() {
	p.once.Do(func() {
		close(p.jobs)
		p.wg.Wait()
	})
}

// bufPool recycles frame-sized buffers.
type bufPool struct{ p sync.Pool }

func (b *bufPool) get(n int) []byte {
	if v, ok := b.p.Get().(*[]byte); ok && cap(*v) >= n {
		return (*v)[:0]
	}
	return make([]byte, 0, n)
}

func (b *bufPool) put(buf []byte) {
	if cap(buf) == 0 {
		return
	}
	buf = buf[:0]
	b.p.Put(&buf)
}

var buffers bufPool
