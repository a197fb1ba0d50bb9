package blob

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// UploadImage is what another process needs to rebuild an upload's
// temporary file from a WriterState when the file itself is elsewhere (an
// object store's replica that did not write it): the file's header, the
// heads of its complete frames, the stored bytes from From to the state's
// End, and the checkpointed partial frame. The bytes before From other
// than the header and the frame heads are not needed to continue writing:
// they stay holes in the rebuilt file.
type UploadImage struct {
	// Header is the file's first HeaderSize bytes (ignored when From is 0:
	// Pending holds them).
	Header []byte
	// Table holds the heads of the state's complete frames, in order,
	// 8 bytes each (as AppendFrameHeads returns them); it may be empty
	// when From is 0.
	Table []byte
	// From is the file offset of Pending.
	From int64
	// Pending is the stored bytes from From to the state's End.
	Pending []byte
	// Tail is the stored partial frame (the state's TailLen bytes).
	Tail []byte
}

// FrameHeadSize is the size of one entry of UploadImage.Table.
const FrameHeadSize = frameHdrSize

// AppendFrameHeads appends the heads of the complete frames written so
// far (FrameHeadSize bytes each) to dst. Call it right after Checkpoint:
// it then describes the frames of the state Checkpoint returned.
func (w *Writer) AppendFrameHeads(dst []byte) []byte {
	for _, t := range w.table {
		var b [frameHdrSize]byte
		t.put(b[:])
		dst = append(dst, b[:]...)
	}
	return dst
}

// UploadFile opens upload id's temporary file for reading (the stored
// bytes of its complete frames, after a Checkpoint).
func (s *Store) UploadFile(id string) (vfs.File, error) {
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	f, err := s.fs.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: upload %s", ErrNotFound, id)
		}
		return nil, fmt.Errorf("blob: upload %s: %w", id, err)
	}
	return f, nil
}

// UploadTail returns the stored partial frame that state st of upload id
// refers to (nil when it has none).
func (s *Store) UploadTail(id string, st WriterState) ([]byte, error) {
	if st.TailLen <= 0 {
		return nil, nil
	}
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	b, err := s.readFile(tailPath(p, st.TailSlot))
	if err != nil {
		return nil, fmt.Errorf("%w: upload %s tail: %v", ErrBadState, id, err)
	}
	if int64(len(b)) != st.TailLen {
		return nil, fmt.Errorf("%w: upload %s tail of %d bytes, state says %d", ErrBadState, id, len(b), st.TailLen)
	}
	return b, nil
}

// RestoreUpload replaces upload id's temporary file (and tail) with the
// one im describes at state st, so that ResumeWriter continues from st.
// The image is checked against the state's sizes here and, by
// ResumeWriter, against the header, the frame heads and the tail's seal.
func (s *Store) RestoreUpload(id string, st WriterState, im UploadImage) error {
	p, err := s.uploadPath(id)
	if err != nil {
		return err
	}
	maxFrame := frameHdrSize + maxStoredPayload(int64(s.opts.FrameSize))
	switch {
	case im.From < 0 || st.End < headerSize || im.From > st.End || im.From+int64(len(im.Pending)) != st.End:
		return fmt.Errorf("%w: upload %s: image from %d with %d bytes, state ends at %d", ErrBadState, id, im.From, len(im.Pending), st.End)
	case im.From > 0 && len(im.Header) != headerSize:
		return fmt.Errorf("%w: upload %s: header of %d bytes", ErrBadState, id, len(im.Header))
	case int64(len(im.Table)) != int64(st.Frames)*frameHdrSize && (im.From > 0 || len(im.Table) > 0):
		return fmt.Errorf("%w: upload %s: %d bytes of frame heads for %d frames", ErrBadState, id, len(im.Table), st.Frames)
	case int64(len(im.Tail)) != st.TailLen || st.TailLen > maxFrame:
		return fmt.Errorf("%w: upload %s: tail of %d bytes, state says %d", ErrBadState, id, len(im.Tail), st.TailLen)
	}
	if err := s.RemoveUpload(id); err != nil {
		return err
	}
	f, err := s.createFile(p, true)
	if err != nil {
		return wrapIOErr(fmt.Errorf("blob: upload %s: %w", id, err))
	}
	err = writeImage(f, st, im)
	if err == nil && !s.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && st.TailLen > 0 {
		err = s.writeTail(tailPath(p, st.TailSlot), im.Tail, !s.opts.NoSync)
	}
	if err != nil {
		_ = s.RemoveUpload(id)
		if errors.Is(err, ErrBadState) {
			return err
		}
		return wrapIOErr(fmt.Errorf("blob: upload %s: %w", id, err))
	}
	return nil
}

// writeImage writes the header, the frame heads before im.From and the
// pending bytes into f.
func writeImage(f vfs.File, st WriterState, im UploadImage) error {
	if im.From > 0 {
		if _, err := f.WriteAt(im.Header, 0); err != nil {
			return err
		}
	}
	if im.From == 0 && len(im.Table) == 0 {
		// Pending holds every byte, frame heads included.
		if _, err := f.WriteAt(im.Pending, 0); err != nil {
			return err
		}
		return truncate(f, st.End)
	}
	off := int64(headerSize)
	for i := 0; i+frameHdrSize <= len(im.Table); i += frameHdrSize {
		h, err := getFrameHdr(im.Table[i:])
		if err != nil {
			return fmt.Errorf("%w: frame head %d", ErrBadState, i/frameHdrSize)
		}
		if off < im.From {
			if _, err := f.WriteAt(im.Table[i:i+frameHdrSize], off); err != nil {
				return err
			}
		}
		off += frameHdrSize + int64(h.length)
		if off > st.End {
			return fmt.Errorf("%w: frame heads run past %d", ErrBadState, st.End)
		}
	}
	if off != st.End {
		return fmt.Errorf("%w: frame heads end at %d, state says %d", ErrBadState, off, st.End)
	}
	if len(im.Pending) > 0 {
		if _, err := f.WriteAt(im.Pending, im.From); err != nil {
			return err
		}
	}
	return truncate(f, st.End)
}

// readFile returns the content of file p.
func (s *Store) readFile(p string) ([]byte, error) {
	f, err := s.fs.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
