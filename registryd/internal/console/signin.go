package console

// Sign-in and sign-out. The sign-in form is itself protected: a browser
// gets a session without a user (and its CSRF token) with the form, and
// the sign-in replaces it with a new session (a new id: a session id
// planted before the sign-in is worth nothing after it).

import (
	"net/http"
	"strings"
)

// signInData is the sign-in form's.
type signInData struct {
	Next    string
	User    string
	Message string
	CSRF    string
}

// home sends the console's root to the repository list.
func (c *Console) home(w http.ResponseWriter, r *http.Request, _ *visit) error {
	http.Redirect(w, r, Prefix+"repositories", http.StatusSeeOther)
	return nil
}

// safeNext is where to go after signing in: a path of the console, or
// the repository list (never another site).
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "repositories"
	}
	return next
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if !c.authn.Enabled() {
		http.Redirect(w, r, Prefix+"repositories", http.StatusSeeOther)
		return
	}
	next := safeNext(r.URL.Query().Get("next"))
	ss, ok := c.sessions.get(sessionID(r))
	if ok && ss.signedIn {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if !ok {
		id, nss, err := c.sessions.create("", false)
		if err != nil {
			c.plainError(w, http.StatusServiceUnavailable, "Too many sessions; try again later.")
			return
		}
		http.SetCookie(w, sessionCookie(r, id, c.cfg.SessionIdle))
		ss = nss
	}
	c.renderPlain(w, http.StatusOK, "signin", "Sign in", signInData{Next: next, CSRF: ss.csrf})
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !c.authn.Enabled() {
		http.Redirect(w, r, Prefix+"repositories", http.StatusSeeOther)
		return
	}
	oldID := sessionID(r)
	pre, ok := c.sessions.get(oldID)
	if !ok || !sameOrigin(r) || !pre.validCSRF(r.PostFormValue("csrf")) {
		c.plainError(w, http.StatusForbidden, "Refused: the form's security token is missing or stale. Reload the sign-in page and try again.")
		return
	}
	next := safeNext(r.PostFormValue("next"))
	user := r.PostFormValue("user")
	who, err := c.authn.SignIn(user, r.PostFormValue("password"))
	if err != nil {
		c.renderPlain(w, http.StatusUnauthorized, "signin", "Sign in", signInData{Next: next, User: user, CSRF: pre.csrf,
			Message: "Wrong user name or password."})
		return
	}
	c.sessions.end(oldID)
	id, _, err := c.sessions.create(who.User, true)
	if err != nil {
		c.plainError(w, http.StatusServiceUnavailable, "Too many sessions; try again later.")
		return
	}
	http.SetCookie(w, sessionCookie(r, id, c.cfg.SessionMaxAge))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	id := sessionID(r)
	ss, ok := c.sessions.get(id)
	if !ok || !sameOrigin(r) || !ss.validCSRF(r.PostFormValue("csrf")) {
		c.plainError(w, http.StatusForbidden, "Refused: the form's security token is missing or stale.")
		return
	}
	c.sessions.end(id)
	http.SetCookie(w, sessionCookie(r, "", 0))
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}
