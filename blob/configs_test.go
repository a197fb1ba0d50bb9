package blob_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/crypt"
)

// config is one store configuration the tests run against.
type config struct {
	name      string
	sealed    bool
	compress  bool
	frameSize int
	// noShared turns the shared frame cache off.
	noShared bool
	// level is the zstd level (the archive tier's stores use LevelBest).
	level blob.Level
	// fs is the store's file system; nil: the operating system's.
	fs vfs.FS
}

// testFrame is the frame size of most test stores: small, so that a few
// hundred KiB make many frames.
const testFrame = 64 << 10

// configs are the four ways a blob is stored, with testFrame frames.
var configs = []config{
	{name: "plain-raw"},
	{name: "plain-zstd", compress: true},
	{name: "sealed-raw", sealed: true},
	{name: "sealed-zstd", sealed: true, compress: true},
}

func (c config) options() *blob.Options {
	o := &blob.Options{FrameSize: c.frameSize, DisableCompression: !c.compress, Level: c.level, FS: c.fs}
	if o.FrameSize == 0 {
		o.FrameSize = testFrame
	}
	if c.noShared {
		o.SharedFrames = -1
	}
	return o
}

// openStore opens a store with configuration c in dir (a fresh temporary
// directory when empty), closed when the test ends.
func openStore(t testing.TB, c config, dir string) *blob.Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := blob.Open(dir, c.options())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// keyFor is a fresh data key for configuration c, nil when it is plain.
func keyFor(t testing.TB, c config) []byte {
	if !c.sealed {
		return nil
	}
	k, err := crypt.NewDataKey()
	require.NoError(t, err)
	return k
}
