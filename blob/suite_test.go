package blob_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/blob/blobtest"
	"github.com/berthstore/berth/internal/faultfs"
)

// TestConformance runs the blob store conformance suite over every
// configuration of Store: plain and sealed, raw and zstd, with the
// smallest frames, test-sized ones and the default 1 MiB, and with the
// shared frame cache off, at the archive tier's compression level, and on
// a file system other than vfs.Default (internal/faultfs over it, with no
// quota to speak of: the paths of files.go that do not use os.OpenFile).
func TestConformance(t *testing.T) {
	all := append([]config(nil), configs...)
	all = append(all,
		config{name: "plain-zstd-min-frames", compress: true, frameSize: blob.MinFrameSize},
		config{name: "sealed-zstd-min-frames", sealed: true, compress: true, frameSize: blob.MinFrameSize},
		config{name: "sealed-zstd-default-frames", sealed: true, compress: true, frameSize: 1 << 20},
		config{name: "sealed-zstd-unshared", sealed: true, compress: true, noShared: true},
		config{name: "sealed-zstd-best", sealed: true, compress: true, level: blob.LevelBest},
		config{name: "sealed-zstd-faultfs", sealed: true, compress: true, fs: faultfs.New(vfs.Default, 1<<40)},
	)
	for _, c := range all {
		t.Run(c.name, func(t *testing.T) {
			blobtest.Run(t, func(t *testing.T) blobtest.Target[*blob.Reader, *blob.Writer] {
				dir := t.TempDir()
				s := openStore(t, c, dir)
				tg := blobtest.Target[*blob.Reader, *blob.Writer]{
					Store:     s,
					FrameSize: s.FrameSize(),
					Reopen: func(t *testing.T) blob.Backend[*blob.Reader, *blob.Writer] {
						require.NoError(t, s.Close())
						s = openStore(t, c, dir)
						return s
					},
				}
				if c.sealed {
					tg.DataKey = func(t *testing.T) []byte { return keyFor(t, c) }
				}
				return tg
			})
		})
	}
}
