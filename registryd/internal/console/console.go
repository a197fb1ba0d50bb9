package console

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/auth"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Config configures the console. The zero value takes the defaults.
type Config struct {
	// Logger receives errors. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the page-time histogram
	// (berth_console_page_duration_seconds). Nil: not registered.
	Registerer prometheus.Registerer
	// SessionIdle, SessionMaxAge and MaxSessions bound sessions.
	// Defaults DefaultSessionIdle, DefaultSessionMaxAge,
	// DefaultMaxSessions.
	SessionIdle, SessionMaxAge time.Duration
	MaxSessions                int
	// ViewLimit bounds the bytes of a file the viewer shows as text.
	// Default 1 MiB; a larger file is offered for download.
	ViewLimit int64
	// SummaryMaxAge is how old the repository list's sizes and push
	// times may be. Default 30 s.
	SummaryMaxAge time.Duration
	// Now is the clock of sessions. Default time.Now.
	Now func() time.Time
}

// Console serves the pages under Prefix.
type Console struct {
	cfg       Config
	log       *slog.Logger
	store     Store
	authn     *auth.Authenticator
	az        authz.Authorizer
	sessions  *sessions
	pages     *pages
	summaries *summaries
	images    *imageCache
	listings  *listingCache
	mux       *http.ServeMux
	pageTime  *prometheus.HistogramVec
}

// New returns the console over store, authenticating with authn and
// asking az every question.
func New(store Store, authn *auth.Authenticator, az authz.Authorizer, cfg Config) (*Console, error) {
	if store == nil || authn == nil || az == nil {
		return nil, errors.New("console: nil store, authenticator or authorizer")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = DefaultSessionMaxAge
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.ViewLimit <= 0 {
		cfg.ViewLimit = 1 << 20
	}
	if cfg.SummaryMaxAge <= 0 {
		cfg.SummaryMaxAge = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ps, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, log: cfg.Logger, store: store, authn: authn, az: az,
		sessions:  newSessions(cfg.SessionIdle, cfg.SessionMaxAge, cfg.MaxSessions, cfg.Now),
		pages:     ps,
		summaries: newSummaries(store, cfg.SummaryMaxAge, cfg.Logger),
		images:    newImageCache(store, 8),
		listings:  newListingCache(16 << 20),
		pageTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_console_page_duration_seconds",
			Help:    "Server time of the console's pages and actions, by page.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"page"}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(c.pageTime); err != nil {
			return nil, fmt.Errorf("console: metrics: %w", err)
		}
	}
	c.routes()
	return c, nil
}

// handlerFunc is a page or action: it runs for a caller with a session.
type handlerFunc func(w http.ResponseWriter, r *http.Request, v *visit) error

// visit is one request of a caller: who, the session, the CSRF token to
// put in forms.
type visit struct {
	who     engine.Principal
	user    string
	session *session
	// open is set on a registry without authentication (no sign-in).
	open bool
}

func (c *Console) routes() {
	m := http.NewServeMux()
	m.Handle("GET "+Prefix+"assets/", http.StripPrefix(Prefix, assetHandler()))
	m.HandleFunc("GET "+Prefix+"signin", c.timed("signin", c.signInPage))
	m.HandleFunc("POST "+Prefix+"signin", c.timed("signin", c.signIn))
	m.HandleFunc("POST "+Prefix+"signout", c.timed("signout", c.signOut))
	page := func(pattern, name string, h handlerFunc) { m.HandleFunc(pattern, c.timed(name, c.guard(h, false))) }
	action := func(pattern, name string, h handlerFunc) { m.HandleFunc(pattern, c.timed(name, c.guard(h, true))) }
	page("GET "+Prefix+"{$}", "home", c.home)
	page("GET "+Prefix+"repositories", "repositories", c.repositoriesPage)
	page("GET "+Prefix+"repository", "repository", c.repositoryPage)
	page("GET "+Prefix+"image", "image", c.imagePage)
	page("GET "+Prefix+"files", "files", c.filesPage)
	page("GET "+Prefix+"download", "download", c.download)
	page("GET "+Prefix+"diff", "diff", c.diffPage)
	page("GET "+Prefix+"lifecycle", "lifecycle", c.lifecyclePage)
	page("GET "+Prefix+"scan", "scan", c.scanPage)
	page("GET "+Prefix+"registry", "registry", c.registryPage)
	page("GET "+Prefix+"health", "health", c.healthPage)
	action("POST "+Prefix+"image/delete", "image-delete", c.deleteImage)
	action("POST "+Prefix+"image/tag", "image-tag", c.tagImage)
	action("POST "+Prefix+"lifecycle", "lifecycle-save", c.saveLifecycle)
	action("POST "+Prefix+"lifecycle/preview", "lifecycle-preview", c.previewLifecycle)
	m.HandleFunc(Prefix, c.timed("unknown", func(w http.ResponseWriter, r *http.Request) {
		c.plainError(w, http.StatusNotFound, "No such page.")
	}))
	c.mux = m
}

// ServeHTTP serves a request under Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.mux.ServeHTTP(w, r)
}

// timed observes the server time of h under page, and answers the time
// until the answer's header in a Server-Timing header (page;dur=<ms>),
// which browsers' developer tools show.
func (c *Console) timed(page string, h http.HandlerFunc) http.HandlerFunc {
	obs := c.pageTime.WithLabelValues(page)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h(&timingWriter{ResponseWriter: w, start: start}, r)
		obs.Observe(time.Since(start).Seconds())
	}
}

// timingWriter adds the Server-Timing header when the answer's header
// goes out.
type timingWriter struct {
	http.ResponseWriter
	start time.Time
	done  bool
}

func (t *timingWriter) WriteHeader(code int) {
	if !t.done && code >= 200 {
		t.done = true
		t.Header().Set("Server-Timing", fmt.Sprintf("page;dur=%.3f", float64(time.Since(t.start).Microseconds())/1000))
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *timingWriter) Write(p []byte) (int, error) {
	if !t.done {
		t.WriteHeader(http.StatusOK)
	}
	return t.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer.
func (t *timingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// guard finds the caller (the session's user; the anonymous caller of
// an open registry), sends one without a session to the sign-in form
// (GET) or refuses it (POST, 403), checks an action's CSRF token and its
// origin, then runs h and answers its error.
func (c *Console) guard(h handlerFunc, action bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		info := request.InfoFrom(r.Context())
		v, err := c.caller(w, r)
		if err != nil {
			if action {
				c.plainError(w, http.StatusForbidden, "Sign in first.")
				return
			}
			target := Prefix + "signin?next=" + url.QueryEscape(r.URL.RequestURI())
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		info.SetPrincipal(v.who)
		if action {
			if !sameOrigin(r) {
				c.plainError(w, http.StatusForbidden, "Refused: the request comes from another site.")
				return
			}
			token := r.Header.Get("X-CSRF-Token")
			if token == "" {
				token = r.PostFormValue("csrf")
			}
			if !v.session.validCSRF(token) {
				c.plainError(w, http.StatusForbidden, "Refused: the form's security token is missing or stale. Reload the page and try again.")
				return
			}
		}
		if err := h(w, r, v); err != nil {
			c.fail(w, r, v, err)
		}
	}
}

// caller returns the request's visit: its session's user, or on an open
// registry an anonymous visitor (a session is made for it, for the CSRF
// token).
func (c *Console) caller(w http.ResponseWriter, r *http.Request) (*visit, error) {
	id := sessionID(r)
	ss, ok := c.sessions.get(id)
	if !c.authn.Enabled() {
		if !ok {
			nid, nss, err := c.sessions.create("", true)
			if err != nil {
				return nil, err
			}
			http.SetCookie(w, sessionCookie(r, nid, c.cfg.SessionMaxAge))
			ss = nss
		}
		return &visit{who: c.authn.Anonymous(), session: ss, open: true}, nil
	}
	if !ok || !ss.signedIn || ss.user == "" {
		return nil, errNotSignedIn
	}
	if !c.authn.Holds(ss.user) {
		// The user lost its credentials (a reload): the session ends.
		c.sessions.end(id)
		return nil, errNotSignedIn
	}
	who, err := c.authn.Principal(ss.user)
	if err != nil {
		return nil, err
	}
	return &visit{who: who, user: ss.user, session: ss}, nil
}

var errNotSignedIn = errors.New("console: not signed in")

// sameOrigin reports whether a POST comes from the console's own pages:
// its Origin (or, without one, its Referer) names the request's host. A
// request that sends neither is let through to the CSRF check.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true
	}
	u, err := url.Parse(src)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
