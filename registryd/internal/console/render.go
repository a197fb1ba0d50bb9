package console

// Templates (html/template: every value escaped for where it lands) and
// assets, embedded in the binary.

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// pageNames are the templates of templates/, each rendered inside
// layout.html.
var pageNames = []string{"error", "signin", "repositories", "repository", "image", "files", "view", "diff",
	"lifecycle", "scan", "registry", "health"}

// pages holds the parsed templates by page name.
type pages struct {
	t map[string]*template.Template
}

func parsePages() (*pages, error) {
	ps := &pages{t: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		ps.t[name] = t
	}
	return ps, nil
}

// layoutData is what layout.html sees: the page's title, the caller,
// the CSRF token and the page's own data in Page.
type layoutData struct {
	Title string
	User  string
	Open  bool
	CSRF  string
	Page  any
}

// render writes page with data as the answer, status status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, v *visit, status int, page, title string, data any) {
	ld := layoutData{Title: title, Page: data}
	if v != nil {
		ld.User, ld.Open, ld.CSRF = v.user, v.open, v.session.csrf
	}
	c.write(w, status, page, "layout.html", ld)
}

// renderPlain writes page without a caller (the sign-in form, errors
// before a session).
func (c *Console) renderPlain(w http.ResponseWriter, status int, page, title string, data any) {
	c.write(w, status, page, "layout.html", layoutData{Title: title, Page: data})
}

// renderFragment writes one named template of page alone (the preview
// pane the script swaps in).
func (c *Console) renderFragment(w http.ResponseWriter, status int, page, name string, data any) {
	c.write(w, status, page, name, data)
}

func (c *Console) write(w http.ResponseWriter, status int, page, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages.t[page].ExecuteTemplate(&buf, name, data); err != nil {
		c.log.Error("console: rendering", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// assetHandler serves assets/ (the style sheet and the script).
func assetHandler() http.Handler {
	sub, _ := fs.Sub(assetFS, ".")
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"bytes":  humanBytes,
	"when":   when,
	"short":  shortDigest,
	"ratio":  ratio,
	"mode":   func(m fmt.Stringer) string { return m.String() },
	"join":   strings.Join,
	"add":    func(a, b int) int { return a + b },
	"sub":    func(a, b int) int { return a - b },
	"octal":  func(m uint32) string { return fmt.Sprintf("%04o", m&0o7777) },
	"pathOf": func(dir, name string) string { return strings.TrimSuffix(dir, "/") + "/" + name },
}

// humanBytes is n in B, KiB, MiB, GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// when is t in UTC to the second, or "never" for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// shortDigest is the first 12 hex digits of d.
func shortDigest(d digest.Digest) string {
	s := d.Encoded()
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// ratio is logical over stored size, as "3.52×" ("–" without a stored
// size).
func ratio(size, stored int64) string {
	if stored <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(size)/float64(stored))
}
