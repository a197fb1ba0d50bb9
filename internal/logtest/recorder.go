// Package logtest keeps what a logger warned about, for tests that print
// or compare it.
package logtest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Recorder is a slog.Handler that keeps the records of level warning and
// above, each as one line: "log: MESSAGE key=value ...".
type Recorder struct {
	sink  *lines
	attrs []slog.Attr
}

type lines struct {
	mu    sync.Mutex
	lines []string
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{sink: &lines{}} }

// Enabled reports whether l is a warning or above.
func (r *Recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// Handle keeps rec as a line.
func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "log: %s", rec.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		return true
	}
	for _, a := range r.attrs {
		add(a)
	}
	rec.Attrs(add)
	r.sink.mu.Lock()
	r.sink.lines = append(r.sink.lines, b.String())
	r.sink.mu.Unlock()
	return nil
}

// WithAttrs returns a Recorder that adds as to each line, keeping its
// lines with r's.
func (r *Recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &Recorder{sink: r.sink, attrs: append(slices.Clone(r.attrs), as...)}
}

// WithGroup returns r: groups are not recorded.
func (r *Recorder) WithGroup(string) slog.Handler { return r }

// String returns the lines kept, each ending in a newline ("" for none).
func (r *Recorder) String() string {
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	if len(r.sink.lines) == 0 {
		return ""
	}
	return strings.Join(r.sink.lines, "\n") + "\n"
}
