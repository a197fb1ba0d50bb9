package osv

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// ErrNoRecords is returned when a file or tree holds no record at all: an
// import of nothing is a mistake (a wrong path, an empty download), not an
// empty database.
var ErrNoRecords = errors.New("osv: no records")

// ReadZip calls fn with every record of a zip export, in the archive's
// order, named by its member. Members that are not .json files are
// ignored. The first invalid record or error of fn stops the read.
func ReadZip(r io.ReaderAt, size int64, fn func(name string, rec *Record) error) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("%w: not a zip export: %v", ErrInvalid, err)
	}
	n := 0
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		data, err := readMember(f)
		if err != nil {
			return err
		}
		rec, err := Parse(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		n++
		if err := fn(f.Name, rec); err != nil {
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("%w in the zip export", ErrNoRecords)
	}
	return nil
}

func readMember(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > MaxRecordSize {
		return nil, fmt.Errorf("%w: %s: %d bytes, more than %d", ErrInvalid, f.Name, f.UncompressedSize64, MaxRecordSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	defer rc.Close()
	// The header's size is the writer's word: read no more than the bound.
	data, err := io.ReadAll(io.LimitReader(rc, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %s: more than %d bytes", ErrInvalid, f.Name, MaxRecordSize)
	}
	return data, nil
}

// ReadFS calls fn with every record under root in fsys: each .json file
// is one record, each .zip file an export of many. Files are visited in
// lexical order; a record is named by its path (and its member, for a zip:
// "Debian/all.zip:DSA-5514-1.json"). The first invalid record or error of
// fn stops the read.
func ReadFS(fsys fs.FS, root string, fn func(name string, rec *Record) error) error {
	n := 0
	count := func(name string, rec *Record) error {
		n++
		return fn(name, rec)
	}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch path.Ext(p) {
		case ".json":
			data, err := readFile(fsys, p)
			if err != nil {
				return err
			}
			rec, err := Parse(data)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			return count(p, rec)
		case ".zip":
			return readZipFile(fsys, p, count)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w under %s", ErrNoRecords, root)
	}
	return nil
}

func readFile(fsys fs.FS, p string) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %s: more than %d bytes", ErrInvalid, p, MaxRecordSize)
	}
	return data, nil
}

func readZipFile(fsys fs.FS, p string, fn func(string, *Record) error) error {
	f, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return fmt.Errorf("%s: the file system cannot read at offsets, which a zip needs", p)
	}
	err = ReadZip(ra, st.Size(), func(name string, rec *Record) error {
		return fn(p+":"+name, rec)
	})
	if errors.Is(err, ErrNoRecords) {
		return nil // counted over the whole tree
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}
