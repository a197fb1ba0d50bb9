package e2e

// The console in a real browser: headless Chromium (chromedp) against a
// registryd on 127.0.0.1 holding a Debian base image. The walk: sign in,
// find the repository, open an image, browse to /etc/os-release (a
// symlink, followed inside the image) and read it, download a binary and
// compare its sha256 with the layer's file, diff two tags, edit a
// lifecycle policy and see the preview change, and, signed in as a user
// whose policies deny it, find no delete button and get 403 when the
// request is forced. Screenshots of the main pages are written to the
// test's directory, and to docs/console/ with BERTH_UPDATE_SCREENSHOTS=1.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/internal/console/consoletest"
)

// consoleBinary is the binary the walk downloads.
const consoleBinary = "usr/bin/dpkg"

func TestConsoleWalk(t *testing.T) {
	if testing.Short() {
		t.Skip("the console's browser walk runs without -short")
	}
	begin := time.Now()
	base := debianBaseLayer(t)
	want, ok := layerFileSHA256(t, base, consoleBinary)
	require.True(t, ok, "the base layer holds /%s", consoleBinary)
	t.Logf("Debian base layer ready after %v", time.Since(begin).Round(time.Millisecond))

	reg := consoletest.Start(t, consoletest.Options{})
	baseLayer, err := tarball.LayerFromFile(base)
	require.NoError(t, err)
	v1img, err := mutate.AppendLayers(empty.Image, baseLayer)
	require.NoError(t, err)
	v1img = consoletestConfig(t, v1img, "debootstrap base")
	reg.Push(t, "debian/base", "v1", v1img)
	extra := consoletest.Layer(t, []consoletest.File{
		{Name: "etc/", Type: '5'},
		{Name: "etc/motd", Body: []byte("welcome to v2\n")},
		{Name: "etc/.wh.debian_version", Body: nil},
	})
	v2img, err := mutate.AppendLayers(v1img, extra)
	require.NoError(t, err)
	v2img = consoletestConfig(t, v2img, "add a motd, remove debian_version")
	reg.Push(t, "debian/base", "v2", v2img)
	v3img := consoletestConfig(t, v2img, "a third image")
	reg.Push(t, "debian/base", "v3", v3img)
	t.Logf("images pushed after %v", time.Since(begin).Round(time.Millisecond))

	ctx := newChromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	shots := newScreenshots(t)
	u := reg.URL

	// Sign in (the console sends a browser without a session to the form).
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(u+"/console/"),
		chromedp.WaitVisible(chromedp.ID("user")),
		shots.take("signin"),
		chromedp.SendKeys(chromedp.ID("user"), consoletest.Admin),
		chromedp.SendKeys(chromedp.ID("password"), consoletest.Password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("repositories")),
	))
	require.Equal(t, "Repositories", textOf(t, ctx, chromedp.CSS("h1")))

	// Find the repository and open an image.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("q"), "debian"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(`//a[text()="debian/base"]`),
		shots.take("repositories"),
		chromedp.Click(`//a[text()="debian/base"]`),
		chromedp.WaitVisible(chromedp.ID("images")),
		shots.take("repository"),
		chromedp.Click(`//tr[td/span[text()="v1"]]//a[contains(@class,"digest")]`),
		chromedp.WaitVisible(chromedp.ID("layers")),
		shots.take("image"),
	))

	// Browse to /etc/os-release (a symlink to ../usr/lib/os-release) and
	// read it.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("browse")),
		chromedp.WaitVisible(chromedp.ID("entries")),
		chromedp.Click(`//a[@class="entry" and text()="etc/"]`),
		chromedp.WaitVisible(`//a[@class="entry" and text()="os-release"]`),
		shots.take("files"),
		chromedp.Click(`//a[@class="entry" and text()="os-release"]`),
		chromedp.WaitVisible(chromedp.ID("meta")),
	))
	if eval[bool](t, ctx, `document.getElementById("link-target") !== null`) {
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("link-target"))))
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("content")),
		shots.take("view"),
	))
	content := textOf(t, ctx, chromedp.ID("content"))
	require.Contains(t, content, "ID=debian")
	require.Contains(t, content, "PRETTY_NAME=")

	// Download a binary and compare its sha256 with the layer's file.
	downloads := t.TempDir()
	_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true)})
	require.NoError(t, err)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	dir, file := filepath.Split("/" + consoleBinary)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(fmt.Sprintf("%s/console/files?repo=debian/base&ref=v1&path=%s", u, strings.TrimSuffix(dir, "/"))),
		chromedp.WaitVisible(chromedp.ID("entries")),
		chromedp.Click(fmt.Sprintf(`//tr[th/a[@class="entry" and text()=%q]]//a[text()="Download"]`, file)),
	))
	var guid string
	for ev, err := range progress {
		require.NoError(t, err, "the download did not complete")
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	got, err := os.ReadFile(filepath.Join(downloads, guid))
	require.NoError(t, err)
	sum := sha256.Sum256(got)
	require.Equal(t, want, hex.EncodeToString(sum[:]), "the downloaded /%s is the layer's", consoleBinary)

	// Diff two tags.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(u+"/console/image?repo=debian/base&ref=v1"),
		chromedp.WaitVisible(chromedp.ID("diff-to")),
		chromedp.SetValue(chromedp.ID("diff-to"), "v2"),
		chromedp.Click(chromedp.ID("diff")),
		chromedp.WaitVisible(chromedp.ID("summary")),
		shots.take("diff"),
	))
	summary := textOf(t, ctx, chromedp.ID("summary"))
	require.Contains(t, summary, "1 added")
	require.Contains(t, summary, "1 removed")
	diffRows := textOf(t, ctx, chromedp.ID("diff"))
	require.Contains(t, diffRows, "/etc/motd")
	require.Contains(t, diffRows, "/etc/debian_version")

	// Edit a lifecycle policy: the preview follows the text as it is typed.
	keep := func(n int) string {
		return fmt.Sprintf(`{"rules":[{"rulePriority":1,"description":"keep %d","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":%d},"action":{"type":"expire"}}]}`, n, n)
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(u+"/console/repository?name=debian/base"),
		chromedp.Click(chromedp.ID("lifecycle-link")),
		chromedp.WaitVisible(chromedp.ID("policy")),
		chromedp.SendKeys(chromedp.ID("policy"), keep(1)),
		chromedp.WaitVisible(chromedp.ID("preview-count")),
	))
	require.Equal(t, "2 image(s) would expire.", textOf(t, ctx, chromedp.ID("preview-count")))
	eval[chromedp.Void](t, ctx, `document.getElementById("policy").value = ""; undefined`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("policy"), keep(2)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`document.getElementById("preview-count") !== null && document.getElementById("preview-count").textContent === "1 image(s) would expire."`,
				chromedp.WithPollingTimeout(20*time.Second))(ctx, t)
			return err
		}),
		shots.take("lifecycle"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("message")),
	))
	saved, err := reg.Engine.GetLifecyclePolicy(context.Background(), "debian/base")
	require.NoError(t, err)
	require.Contains(t, saved, `"countNumber":2`)

	// Store health, then sign out.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(u+"/console/health"),
		chromedp.WaitVisible(chromedp.ID("health")),
		shots.take("health"),
		chromedp.Click(`//button[text()="Sign out"]`),
		chromedp.WaitVisible(chromedp.ID("signin")),
	))

	// A reader: no delete button, no save button, and 403 when forced.
	v1digest, err := v1img.Digest()
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("user"), consoletest.Reader),
		chromedp.SendKeys(chromedp.ID("password"), consoletest.Password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("repositories")),
		chromedp.Navigate(u+"/console/repository?name=debian/base"),
		chromedp.WaitVisible(chromedp.ID("images")),
	))
	deletes := eval[int](t, ctx, `document.querySelectorAll('form[action="/console/image/delete"]').length`)
	forced := eval[int](t, ctx, fmt.Sprintf(`fetch("/console/image/delete", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "csrf=" + encodeURIComponent(document.querySelector('input[name="csrf"]').value) + "&repo=debian/base&digest=%s"}).then(r => r.status)`, v1digest),
		func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) })
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(u+"/console/lifecycle?repo=debian/base"),
		chromedp.WaitVisible(chromedp.ID("policy")),
	))
	saves := eval[int](t, ctx, `document.querySelectorAll("#save").length`)
	require.Zero(t, deletes, "no delete button for the reader")
	require.Zero(t, saves, "no save button for the reader")
	require.Equal(t, 403, forced, "a forced delete is refused")
	_, err = reg.Engine.Image(context.Background(), "debian/base", "v1")
	require.NoError(t, err, "the image is still there")
	t.Logf("console walk done in %v", time.Since(begin).Round(time.Millisecond))
}

// consoletestConfig gives img a config with one history entry saying
// what.
func consoletestConfig(t *testing.T, img v1.Image, what string) v1.Image {
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.History = append(cf.History, v1.History{CreatedBy: what, Created: v1.Time{Time: time.Now()}, EmptyLayer: true})
	out, err := mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	return out
}

// screenshots writes PNG screenshots of the pages to the test's
// directory, and to docs/console/ with BERTH_UPDATE_SCREENSHOTS=1.
type screenshots struct {
	t    *testing.T
	dirs []string
}

func newScreenshots(t *testing.T) *screenshots {
	s := &screenshots{t: t, dirs: []string{t.TempDir()}}
	if os.Getenv("BERTH_UPDATE_SCREENSHOTS") == "1" {
		s.dirs = append(s.dirs, filepath.Join("..", "..", "docs", "console"))
	}
	return s
}

func (s *screenshots) take(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		buf, err := chromedp.CaptureScreenshot()(ctx, t)
		if err != nil {
			return err
		}
		for _, d := range s.dirs {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(d, name+".png"), buf, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

// textOf is the text of the node sel selects.
func textOf[S chromedp.Selectable](t *testing.T, ctx context.Context, sel S) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	require.NoError(t, err)
	return s
}

// eval evaluates expr in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	require.NoError(t, err)
	return v
}
