package console

// The file browser: an image's merged file system (engine.ImageFS, read
// through the layer tables): directories, metadata, symlinks (shown, and
// followed only inside the image, as the ImageFS resolves them), text
// files viewed (escaped, size-capped), any file downloaded.

import (
	"bytes"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// filesData is the file browser's.
type filesData struct {
	Repo   string
	Ref    string
	Digest digest.Digest
	Path   string
	Crumbs []crumb
	Entry  entryRow
	// Entries are a directory's children; Listing is their table,
	// rendered (the "entries" template) once per image and directory.
	Entries []entryRow
	Listing template.HTML
	// Text is a text file's contents; Binary or TooLarge say why a file
	// is not shown.
	Text     string
	Shown    bool
	Binary   bool
	TooLarge bool
	Limit    int64
}

// crumb is one component of the path, with the path up to it.
type crumb struct{ Name, Path string }

// entryRow is one file's metadata.
type entryRow struct {
	Name     string
	Path     string
	Type     string
	Mode     string
	UID, GID uint32
	Size     int64
	MTime    time.Time
	// Link is a symlink's target; LinkPath the absolute path it names
	// inside the image (empty when it leads nowhere).
	Link     string
	LinkPath string
	IsDir    bool
	IsFile   bool
}

// fsPath turns a browser path ("/etc/os-release", "" for the root) into
// an fs.FS path ("etc/os-release", ".").
func fsPath(p string) (string, error) {
	if p == "" || p == "/" {
		return ".", nil
	}
	if strings.ContainsRune(p, 0) || strings.Contains(p, "\\") {
		return "", badRequest("bad path")
	}
	clean := strings.TrimPrefix(path.Clean("/"+p), "/")
	if clean == "" {
		return ".", nil
	}
	if !fs.ValidPath(clean) {
		return "", badRequest("bad path")
	}
	return clean, nil
}

// openImage resolves the request's repo and ref, asks the pull actions,
// and returns the image's filesystem and its release.
func (c *Console) openImage(r *http.Request, v *visit, repo, ref string) (*engine.ImageFS, func(), error) {
	if err := engine.ValidateRepositoryName(repo); err != nil {
		return nil, nil, err
	}
	if ref == "" {
		return nil, nil, badRequest("no image reference")
	}
	if err := c.require(r, v, pullAccess(repo)); err != nil {
		return nil, nil, err
	}
	det, err := c.store.Image(r.Context(), repo, ref)
	if err != nil {
		return nil, nil, err
	}
	return c.images.acquire(r.Context(), repo, det.Digest)
}

func (c *Console) filesPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := r.URL.Query()
	repo, ref := q.Get("repo"), q.Get("ref")
	p, err := fsPath(q.Get("path"))
	if err != nil {
		return err
	}
	fsys, release, err := c.openImage(r, v, repo, ref)
	if err != nil {
		return err
	}
	defer release()
	abs := "/" + strings.TrimPrefix(p, ".")
	info, err := fsys.Lstat(p)
	if err != nil {
		return err
	}
	d := filesData{Repo: repo, Ref: ref, Digest: fsys.Digest(), Path: abs, Crumbs: crumbs(abs), Limit: c.cfg.ViewLimit}
	d.Entry = entryOf(fsys, path.Dir(abs), info)
	d.Entry.Path = abs
	switch {
	case info.IsDir():
		// An image never changes: its directory's table is rendered once
		// and kept (the caller's access was asked above, every time).
		key := repo + "@" + string(d.Digest) + ":" + abs
		listing, ok := c.listings.get(key)
		if !ok {
			ents, err := fsys.ReadDir(p)
			if err != nil {
				return err
			}
			d.Entries = make([]entryRow, 0, len(ents))
			for _, e := range ents {
				fi, err := e.Info()
				if err != nil {
					continue
				}
				d.Entries = append(d.Entries, entryOf(fsys, abs, fi))
			}
			var buf bytes.Buffer
			if err := c.pages.t["files"].ExecuteTemplate(&buf, "entries", d); err != nil {
				return err
			}
			listing = template.HTML(buf.String()) //nolint:gosec // made by html/template just now
			c.listings.put(key, listing)
		}
		d.Listing = listing
		c.render(w, r, v, http.StatusOK, "files", abs, d)
		return nil
	case info.Mode().IsRegular():
		if info.Size() > c.cfg.ViewLimit {
			d.TooLarge = true
			break
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, c.cfg.ViewLimit))
		if err != nil {
			return err
		}
		if isBinary(b) {
			d.Binary = true
			break
		}
		d.Text, d.Shown = string(b), true
	}
	c.render(w, r, v, http.StatusOK, "view", abs, d)
	return nil
}

// entryOf describes fi, a child of dir.
func entryOf(fsys *engine.ImageFS, dir string, fi fs.FileInfo) entryRow {
	p := strings.TrimSuffix(dir, "/") + "/" + fi.Name()
	e := entryRow{Name: fi.Name(), Path: p, Mode: fi.Mode().String(), Size: fi.Size(), MTime: fi.ModTime(),
		IsDir: fi.IsDir(), IsFile: fi.Mode().IsRegular()}
	if in, ok := fi.Sys().(*engine.ImageInode); ok {
		e.UID, e.GID = in.UID, in.GID
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		e.Type = "directory"
	case m.IsRegular():
		e.Type = "file"
	case m&fs.ModeSymlink != 0:
		e.Type = "symlink"
		if in, ok := fi.Sys().(*engine.ImageInode); ok {
			e.Link = in.Linkname
			target := in.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(dir, target)
			}
			target = path.Clean("/" + target)
			statPath := strings.TrimPrefix(target, "/")
			if statPath == "" {
				statPath = "."
			}
			if _, err := fsys.Stat(statPath); err == nil {
				e.LinkPath = target
			}
		}
	case m&fs.ModeDevice != 0:
		e.Type = "device"
	case m&fs.ModeNamedPipe != 0:
		e.Type = "fifo"
	default:
		e.Type = "other"
	}
	return e
}

// crumbs are the components of abs with their paths.
func crumbs(abs string) []crumb {
	out := []crumb{{Name: "/", Path: "/"}}
	cur := ""
	for _, c := range strings.Split(strings.Trim(abs, "/"), "/") {
		if c == "" {
			continue
		}
		cur += "/" + c
		out = append(out, crumb{Name: c, Path: cur})
	}
	return out
}

// isBinary reports whether b looks like no text: a NUL, or invalid
// UTF-8, in its first 8 KiB (a rune cut by the 8 KiB is not counted).
func isBinary(b []byte) bool {
	head := b[:min(len(b), 8<<10)]
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	if utf8.Valid(head) {
		return false
	}
	if len(head) < len(b) {
		for i := 1; i <= 3 && i < len(head); i++ {
			if utf8.Valid(head[:len(head)-i]) {
				return false
			}
		}
	}
	return true
}

// download answers a file's bytes as an attachment, streamed from the
// layers (Range requests served).
func (c *Console) download(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := r.URL.Query()
	p, err := fsPath(q.Get("path"))
	if err != nil {
		return err
	}
	fsys, release, err := c.openImage(r, v, q.Get("repo"), q.Get("ref"))
	if err != nil {
		return err
	}
	defer release()
	f, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return badRequest("not a regular file")
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		return errors.New("console: image file is not seekable")
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": info.Name()})
	if disp == "" {
		disp = "attachment"
	}
	h.Set("Content-Disposition", disp)
	http.ServeContent(w, r, "", info.ModTime(), rs)
	return nil
}

// listingCache keeps rendered directory tables, up to max bytes (all
// dropped when full: they are cheap to make again).
type listingCache struct {
	max int

	mu    sync.Mutex
	size  int
	items map[string]template.HTML
}

func newListingCache(max int) *listingCache {
	return &listingCache{max: max, items: map[string]template.HTML{}}
}

func (l *listingCache) get(key string) (template.HTML, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.items[key]
	return h, ok
}

func (l *listingCache) put(key string, h template.HTML) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(h) > l.max {
		return
	}
	if l.size+len(h) > l.max {
		clear(l.items)
		l.size = 0
	}
	if _, ok := l.items[key]; !ok {
		l.items[key] = h
		l.size += len(h)
	}
}
