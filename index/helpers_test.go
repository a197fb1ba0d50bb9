package index

import (
	"log/slog"
	"os"
	"testing"
)

// testLogger logs to the test log at debug level.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	if os.Getenv("INDEX_LOG_STDERR") != "" {
		_, _ = os.Stderr.Write(p)
		return len(p), nil
	}
	w.t.Log(string(p))
	return len(p), nil
}
