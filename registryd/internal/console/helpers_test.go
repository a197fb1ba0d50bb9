package console_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/internal/console/consoletest"
)

// browser is one user's HTTP client with its own cookie jar, which does
// not follow redirects (the tests look at them).
type browser struct {
	tb     testing.TB
	reg    *consoletest.Registry
	client *http.Client
}

func newBrowser(tb testing.TB, reg *consoletest.Registry) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	return &browser{tb: tb, reg: reg, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the first CSRF token of a page's forms.
func csrf(tb testing.TB, body string) string {
	tb.Helper()
	m := csrfField.FindStringSubmatch(body)
	require.NotNil(tb, m, "no CSRF token in the page")
	return m[1]
}

// signIn signs user in and returns the browser.
func signIn(tb testing.TB, reg *consoletest.Registry, user string) *browser {
	tb.Helper()
	b := newBrowser(tb, reg)
	status, body := b.get("/console/signin")
	require.Equal(tb, http.StatusOK, status)
	resp := b.post("/console/signin", url.Values{"csrf": {csrf(tb, body)}, "user": {user}, "password": {consoletest.Password}})
	require.Equal(tb, http.StatusSeeOther, resp.StatusCode)
	require.Equal(tb, "/console/repositories", resp.Header.Get("Location"))
	return b
}

func (b *browser) get(path string) (int, string) {
	b.tb.Helper()
	return consoletest.Get(b.tb, b.client, b.reg.URL+path)
}

func (b *browser) post(path string, form url.Values) *http.Response {
	b.tb.Helper()
	req, err := http.NewRequest(http.MethodPost, b.reg.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	require.NoError(b.tb, err)
	resp.Body.Close()
	return resp
}

// cookie is the browser's session cookie value.
func (b *browser) cookie() string {
	u, _ := url.Parse(b.reg.URL + "/console/")
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "berth_console" {
			return c.Value
		}
	}
	return ""
}
