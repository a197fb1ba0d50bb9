package scan

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
)

// readAll reads the file at p whole, refusing one larger than limit.
func readAll(fsys fs.FS, p string, limit int64) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}

// openAt opens the file at p for reads at offsets: in place when the
// filesystem's files can (os.DirFS, fstest.MapFS and the engine's layer
// view can), else read whole into memory within limit.
func openAt(fsys fs.FS, p string, limit int64) (io.ReaderAt, int64, func() error, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if ra, ok := f.(io.ReaderAt); ok {
		return ra, st.Size(), f.Close, nil
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, 0, nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, 0, nil, err
	}
	if int64(len(data)) > limit {
		return nil, 0, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return bytes.NewReader(data), int64(len(data)), func() error { return nil }, nil
}
