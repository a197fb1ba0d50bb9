package audit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for Options.Now: rotation and retention
// are tested by moving it, never by sleeping.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration // added after each reading, so times are distinct
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t, step: time.Microsecond} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// quietLogger discards what the log says.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openTest opens a log in a fresh directory with a fake clock.
func openTest(t testing.TB, opts *Options) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	if opts == nil {
		opts = &Options{}
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	l, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l, dir
}

// sample returns a record of user i's pull of repository repo.
func sample(i int, repo string) Record {
	user := fmt.Sprintf("user%d", i%7)
	return Record{
		RequestID:     fmt.Sprintf("req-%d", i),
		PrincipalARN:  "arn:aws:iam::123456789012:user/" + user,
		Account:       "123456789012",
		UserName:      user,
		UserID:        "AIDAEXAMPLE" + user,
		PrincipalType: PrincipalIAMUser,
		SourceIP:      "192.0.2.10",
		UserAgent:     "containerd/2.0.0+unknown",
		Action:        "ecr:BatchGetImage",
		Resource:      "arn:aws:ecr:us-east-1:123456789012:repository/" + repo,
		Repository:    repo,
		Decision:      Allow,
		Statement:     `identity policy "team-a-rw" statement 0 (Sid "Pull")`,
		ReadOnly:      true,
		API:           APIOCI,
		Method:        "HEAD",
		Path:          "/v2/" + repo + "/manifests/latest",
	}
}

// all returns every record of q.
func all(t testing.TB, l *Log, q Query) []Record {
	t.Helper()
	var out []Record
	require.NoError(t, l.Records(context.Background(), q, func(r Record) error {
		out = append(out, r)
		return nil
	}))
	return out
}

// segmentFiles lists the segment files of dir, in order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), segmentExt) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// slogTo is a logger that writes text to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func itoa(n int) string { return strconv.Itoa(n) }

// lockedBuffer is a bytes.Buffer safe for the log's goroutines to write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
