package console_test

// Attacks at the wire: forged and missing CSRF tokens, another user's
// session, fixation, and a hostile image whose file names, labels and
// history hold HTML and script.

import (
	"archive/tar"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/internal/console/consoletest"
)

// pushSmall pushes a one-file image to repo:tag and returns its digest.
func pushSmall(t *testing.T, reg *consoletest.Registry, repo, tag, body string) string {
	l := consoletest.Layer(t, []consoletest.File{{Name: "etc/", Type: tar.TypeDir}, {Name: "etc/motd", Body: []byte(body)}})
	return reg.Push(t, repo, tag, consoletest.Image(t, v1.Config{}, nil, l)).String()
}

func TestCSRFRefused(t *testing.T) {
	reg := consoletest.Start(t, consoletest.Options{})
	d := pushSmall(t, reg, "team/app", "v1", "hello")
	admin := signIn(t, reg, consoletest.Admin)
	_, page := admin.get("/console/repository?name=team/app")
	token := csrf(t, page)
	other := signIn(t, reg, consoletest.Admin) // the same user, another browser
	_, otherPage := other.get("/console/repository?name=team/app")
	otherToken := csrf(t, otherPage)
	require.NotEqual(t, token, otherToken, "each session has its own token")

	for _, tc := range []struct {
		name  string
		form  url.Values
		setup func(*http.Request)
	}{
		{"no token", url.Values{"repo": {"team/app"}, "digest": {d}}, nil},
		{"empty token", url.Values{"repo": {"team/app"}, "digest": {d}, "csrf": {""}}, nil},
		{"forged token", url.Values{"repo": {"team/app"}, "digest": {d}, "csrf": {strings.Repeat("A", 43)}}, nil},
		{"another session's token", url.Values{"repo": {"team/app"}, "digest": {d}, "csrf": {otherToken}}, nil},
		{"right token, another site's origin", url.Values{"repo": {"team/app"}, "digest": {d}, "csrf": {token}},
			func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, reg.URL+"/console/image/delete", strings.NewReader(tc.form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.setup != nil {
				tc.setup(req)
			}
			resp, err := admin.client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
			_, err = reg.Engine.Image(context.Background(), "team/app", d)
			require.NoError(t, err, "the image is still there")
		})
	}
	// Sign-out and the lifecycle save need the token too.
	require.Equal(t, http.StatusForbidden, admin.post("/console/lifecycle", url.Values{"repo": {"team/app"}, "policy": {"{}"}}).StatusCode)
	require.Equal(t, http.StatusForbidden, admin.post("/console/signout", nil).StatusCode)
	// With its token, the delete goes through.
	resp := admin.post("/console/image/delete", url.Values{"repo": {"team/app"}, "digest": {d}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, err := reg.Engine.Image(context.Background(), "team/app", d)
	require.Error(t, err, "deleted")
}

func TestSessionsAreTheirUsersOnly(t *testing.T) {
	reg := consoletest.Start(t, consoletest.Options{})
	d := pushSmall(t, reg, "team/app", "v1", "hello")
	pushSmall(t, reg, "outside/tool", "v1", "tool")
	admin := signIn(t, reg, consoletest.Admin)
	outsider := signIn(t, reg, consoletest.Outsider)

	// A directory's table the admin's view rendered (and the console
	// keeps) is still asked about for every caller.
	status, _ := admin.get("/console/files?repo=team/app&ref=v1&path=/etc")
	require.Equal(t, http.StatusOK, status)
	status, _ = outsider.get("/console/files?repo=team/app&ref=v1&path=/etc")
	require.Equal(t, http.StatusForbidden, status)

	// The outsider sees only its repositories, and is refused the others'.
	_, list := outsider.get("/console/repositories")
	require.Contains(t, list, "outside/tool")
	require.NotContains(t, list, "team/app")
	status, _ = outsider.get("/console/repository?name=team/app")
	require.Equal(t, http.StatusForbidden, status)
	status, _ = outsider.get("/console/files?repo=team/app&ref=v1&path=/etc/motd")
	require.Equal(t, http.StatusForbidden, status)
	status, _ = outsider.get("/console/download?repo=team/app&ref=v1&path=/etc/motd")
	require.Equal(t, http.StatusForbidden, status)

	// The admin's CSRF token in the outsider's browser is worth nothing.
	_, page := admin.get("/console/repository?name=team/app")
	adminToken := csrf(t, page)
	resp := outsider.post("/console/image/delete", url.Values{"repo": {"team/app"}, "digest": {d}, "csrf": {adminToken}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	// Nor does the outsider's own valid token give it the admin's rights.
	_, opage := outsider.get("/console/repository?name=outside/tool")
	resp = outsider.post("/console/image/delete", url.Values{"repo": {"team/app"}, "digest": {d}, "csrf": {csrf(t, opage)}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	_, err := reg.Engine.Image(context.Background(), "team/app", d)
	require.NoError(t, err)

	// A made-up session id is no session.
	fake := newBrowser(t, reg)
	u, _ := url.Parse(reg.URL + "/console/")
	fake.client.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_console", Value: strings.Repeat("x", 43), Path: "/console/"}})
	resp, err = fake.client.Get(reg.URL + "/console/repository?name=team/app")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/console/signin"))

	// Fixation: a session id given to a victim before its sign-in is not
	// the session the sign-in makes.
	victim := newBrowser(t, reg)
	_, form := victim.get("/console/signin")
	planted := victim.cookie()
	require.NotEmpty(t, planted)
	resp = victim.post("/console/signin", url.Values{"csrf": {csrf(t, form)}, "user": {consoletest.Admin}, "password": {consoletest.Password}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.NotEqual(t, planted, victim.cookie())
	attacker := newBrowser(t, reg)
	attacker.client.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_console", Value: planted, Path: "/console/"}})
	status, _ = attacker.get("/console/repository?name=team/app")
	require.Equal(t, http.StatusSeeOther, status)

	// After sign-out the cookie is dead, in any browser.
	cookie := admin.cookie()
	_, page = admin.get("/console/repositories")
	require.Equal(t, http.StatusSeeOther, admin.post("/console/signout", url.Values{"csrf": {csrf(t, page)}}).StatusCode)
	replay := newBrowser(t, reg)
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_console", Value: cookie, Path: "/console/"}})
	status, _ = replay.get("/console/repositories")
	require.Equal(t, http.StatusSeeOther, status)
}

func TestSignInRefusals(t *testing.T) {
	reg := consoletest.Start(t, consoletest.Options{})
	b := newBrowser(t, reg)
	_, form := b.get("/console/signin")
	token := csrf(t, form)
	resp := b.post("/console/signin", url.Values{"csrf": {token}, "user": {consoletest.Admin}, "password": {"wrong"}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp = b.post("/console/signin", url.Values{"user": {consoletest.Admin}, "password": {consoletest.Password}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no token")
	resp = b.post("/console/signin", url.Values{"csrf": {token}, "user": {"AWS"}, "password": {"x"}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	// After sign-in, "next" never leads off the console.
	resp = b.post("/console/signin", url.Values{"csrf": {token}, "user": {consoletest.Admin}, "password": {consoletest.Password},
		"next": {"//evil.example/"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/console/repositories", resp.Header.Get("Location"))
	// The cookie's attributes.
	b2 := newBrowser(t, reg)
	r2, err := b2.client.Get(reg.URL + "/console/signin")
	require.NoError(t, err)
	r2.Body.Close()
	sc := r2.Header.Get("Set-Cookie")
	require.Contains(t, sc, "HttpOnly")
	require.Contains(t, sc, "SameSite=Strict")
	require.Contains(t, sc, "Path=/console/")
}

func TestForcedActionsRefused(t *testing.T) {
	reg := consoletest.Start(t, consoletest.Options{})
	d := pushSmall(t, reg, "team/app", "v1", "hello")
	reader := signIn(t, reg, consoletest.Reader)
	status, page := reader.get("/console/repository?name=team/app")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, page, "/console/image/delete", "no delete button for a reader")
	require.NotContains(t, page, "/console/image/tag", "no tag form for a reader")
	token := csrf(t, page)
	require.Equal(t, http.StatusForbidden, reader.post("/console/image/delete", url.Values{"repo": {"team/app"}, "digest": {d}, "csrf": {token}}).StatusCode)
	require.Equal(t, http.StatusForbidden, reader.post("/console/image/tag", url.Values{"repo": {"team/app"}, "digest": {d}, "tag": {"x"}, "csrf": {token}}).StatusCode)
	status, page = reader.get("/console/lifecycle?repo=team/app")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, page, `id="save"`)
	require.Equal(t, http.StatusForbidden, reader.post("/console/lifecycle", url.Values{"repo": {"team/app"}, "policy": {policyKeepOne}, "csrf": {token}}).StatusCode)
	_, err := reg.Engine.GetLifecyclePolicy(context.Background(), "team/app")
	require.Error(t, err, "no policy was set")
	// The replication status is ecr:DescribeImageReplicationStatus's.
	status, page = reader.get("/console/image?repo=team/app&ref=v1")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, page, `id="replication"`)
	// The health page's keys are kms:ListKeys's.
	status, page = reader.get("/console/health")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, "do not allow listing keys")
}

// policyKeepOne expires all images but the newest.
const policyKeepOne = `{"rules":[{"rulePriority":1,"description":"keep one","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`

func TestHostileImageEscaped(t *testing.T) {
	reg := consoletest.Start(t, consoletest.Options{})
	const script = `<script>alert(1)</script>`
	const img = `"><img src=x onerror=alert(2)>`
	l := consoletest.Layer(t, []consoletest.File{
		{Name: "evil/", Type: tar.TypeDir},
		{Name: "evil/" + script, Body: []byte(script)},
		{Name: "evil/" + img + ".txt", Body: []byte("<html><body onload=alert(3)>")},
		{Name: "evil/link", Type: tar.TypeSymlink, Linkname: "../" + script},
		{Name: "evil/javascript:alert(4)", Body: []byte("x")},
	})
	hist := []v1.History{{CreatedBy: "RUN " + script, Comment: img}}
	d := reg.Push(t, "hostile/app", "v1", consoletest.Image(t, v1.Config{Labels: map[string]string{"x": script, img: "y"}}, hist, l)).String()
	reg.Push(t, "hostile/app", "v2", consoletest.Image(t, v1.Config{}, nil, consoletest.Layer(t, []consoletest.File{{Name: script, Body: []byte("z")}})))
	admin := signIn(t, reg, consoletest.Admin)
	for _, path := range []string{
		"/console/repositories?q=" + url.QueryEscape(script),
		"/console/repository?name=hostile/app",
		"/console/image?repo=hostile/app&ref=" + d,
		"/console/files?repo=hostile/app&ref=v1&path=/evil",
		"/console/files?repo=hostile/app&ref=v1&path=" + url.QueryEscape("/evil/"+script),
		"/console/files?repo=hostile/app&ref=v1&path=" + url.QueryEscape("/evil/"+img+".txt"),
		"/console/files?repo=hostile/app&ref=v1&path=/evil/link",
		"/console/diff?repo=hostile/app&from=v1&to=v2",
		"/console/files?repo=hostile/app&ref=" + url.QueryEscape(script) + "&path=/",
	} {
		t.Run(path, func(t *testing.T) {
			_, body := admin.get(path)
			for _, bad := range []string{"<script>alert", "<img src=x", "<body onload", `href="javascript:`} {
				require.NotContains(t, body, bad)
			}
		})
	}
	_, body := admin.get("/console/files?repo=hostile/app&ref=v1&path=/evil")
	require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", "the name is shown, escaped")
	_, body = admin.get("/console/image?repo=hostile/app&ref=" + d)
	require.Contains(t, body, "RUN &lt;script&gt;")
	require.Contains(t, body, `id="replication"`, "the admin sees the replication status")

	// A hostile name downloads as an attachment of opaque bytes.
	resp, err := admin.client.Get(reg.URL + "/console/download?repo=hostile/app&ref=v1&path=" + url.QueryEscape("/evil/"+img+".txt"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment"), resp.Header.Get("Content-Disposition"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")

	// Paths out of the image go nowhere.
	for _, p := range []string{"/../../etc/passwd", "/evil/../../../", "\x00", "/evil/link/../../x"} {
		status, _ := admin.get("/console/files?repo=hostile/app&ref=v1&path=" + url.QueryEscape(p))
		require.Contains(t, []int{http.StatusOK, http.StatusNotFound, http.StatusBadRequest}, status, p)
	}
}

func TestOpenRegistry(t *testing.T) {
	reg := consoletest.Start(t, consoletest.Options{Open: true})
	d := pushSmall(t, reg, "pub/app", "v1", "hello")
	b := newBrowser(t, reg)
	status, page := b.get("/console/repositories")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, "pub/app")
	status, body := b.get("/console/files?repo=pub/app&ref=v1&path=/etc/motd")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "hello")
	// Changes still need the session's token.
	require.Equal(t, http.StatusForbidden, b.post("/console/image/delete", url.Values{"repo": {"pub/app"}, "digest": {d}}).StatusCode)
	_, rp := b.get("/console/repository?name=pub/app")
	require.Equal(t, http.StatusSeeOther, b.post("/console/image/delete", url.Values{"repo": {"pub/app"}, "digest": {d}, "csrf": {csrf(t, rp)}}).StatusCode)
}
