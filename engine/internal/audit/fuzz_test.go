package audit

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fuzzSeeds are lines Berth writes, and lines it must not trip on.
func fuzzSeeds() [][]byte {
	enc := encoder{region: "us-east-1", account: "123456789012"}
	var seeds [][]byte
	for i, r := range []Record{sample(1, "app"), sample(2, "team-a/api")} {
		if i == 1 {
			r.Decision, r.Parameters = ExplicitDeny, map[string]string{"imageTag": "v1\n\"x\""}
			r.Resource = "*"
		}
		if err := r.normalize(); err != nil {
			panic(err)
		}
		line := enc.encode(nil, &r)
		stampTime(line, t0)
		seeds = append(seeds, bytes.TrimSuffix(line, []byte("\n")))
	}
	return append(seeds,
		[]byte(`{}`),
		[]byte(`{"eventTime":"2026-11-23T10:00:00Z","eventSource":"ecr.amazonaws.com","eventName":"PutImage","resources":[{"ARN":1},"x"],"requestParameters":{"a":[1,{"b":null}],"repositoryName":"r"}}`),
		[]byte(`{"eventTime":"2026-11-23T10:00:00+02:00","eventSource":"s:x","eventName":"n","userIdentity":"nope","additionalEventData":[]}`),
		[]byte(`{"eventVersion":"1.11","eventTime":"9999-99-99T99:99:99.999999999Z","x":"\ud800\u0000\\"}`),
		[]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`),
		[]byte("\x00\x00\x00\x00"),
		[]byte(`{"eventTime":"2026-11-23T10:00:00Z","eventSource":"ecr.amazonaws.com","eventName":"PutImage","eventName":"Dup"}`),
	)
}

// FuzzDecodeRecord: any line either decodes or is ErrCorrupt, never a
// panic; what decodes encodes and decodes again to a fixed point (the
// second round changes nothing).
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	enc := encoder{region: "r", account: "a"}
	f.Fuzz(func(t *testing.T, line []byte) {
		r1, err := decodeRecord(line)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		if _, ok := lineTime(line); ok {
			_, good := recordTime(line)
			require.True(t, good)
		}
		round := func(r Record) Record {
			if r.Resource == "" {
				r.Resource = "*"
			}
			b := enc.encode(nil, &r)
			stampTime(b, r.Time)
			got, err := decodeRecord(bytes.TrimSuffix(b, []byte("\n")))
			require.NoError(t, err, "%s", b)
			return got
		}
		r2 := round(r1)
		r3 := round(r2)
		require.Equal(t, r2, r3)
	})
}

// FuzzSegment: any bytes as a segment file, however damaged: the line
// readers agree (backward is forward reversed, with any chunk size), and
// a log opened on it recovers, answers queries in both orders and
// exports only JSON lines.
func FuzzSegment(f *testing.F) {
	var all []byte
	for _, s := range fuzzSeeds() {
		all = append(append(all, s...), '\n')
		f.Add(append(s, '\n'), uint8(3))
	}
	f.Add(all, uint8(7))
	f.Add(all[:len(all)-5], uint8(1))
	f.Add([]byte("\n\n\nx\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		c := int(chunk%32) + 1
		r := bytes.NewReader(data)
		torn, err := tornTail(r, int64(len(data)))
		require.NoError(t, err)
		end := int64(len(data)) - torn
		require.True(t, end == 0 || data[end-1] == '\n')
		const maxLine = 40
		var fwd, bwd [][]byte
		require.NoError(t, forwardLinesSized(r, end, c, maxLine, func(l []byte) bool {
			fwd = append(fwd, bytes.Clone(l))
			return true
		}))
		require.NoError(t, backwardLinesSized(r, end, c, maxLine, func(l []byte) bool {
			bwd = append(bwd, bytes.Clone(l))
			return true
		}))
		require.Len(t, bwd, len(fwd))
		want := bytes.Split(data[:end], []byte("\n"))
		if end > 0 {
			want = want[:len(want)-1]
		} else {
			want = nil
		}
		require.Len(t, fwd, len(want))
		for i := range fwd {
			w := want[i]
			if len(w) > maxLine {
				w = nil // too long: yielded as nil, counted as corrupt
			}
			require.Equal(t, string(w), string(fwd[i]), "line %d forward", i)
			require.Equal(t, string(fwd[i]), string(bwd[len(bwd)-1-i]), "line %d backward", i)
		}

		dir := memTempDir(t)
		name := segmentName(1, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
		l, err := Open(dir, &Options{Logger: quietLogger(), MaxAge: -1})
		require.NoError(t, err)
		defer l.Close()
		require.Equal(t, torn, l.Status().DroppedAtOpen)
		for _, q := range []Query{{}, {Order: OldestFirst}, {Decision: AnyDenial, Action: "ecr:*"}, {Since: t0, Until: t0.Add(time.Hour)}} {
			require.NoError(t, l.Records(context.Background(), q, func(Record) error { return nil }))
			var out bytes.Buffer
			require.NoError(t, l.Export(context.Background(), q, &out))
			for line := range bytes.Lines(out.Bytes()) {
				require.True(t, validLine(bytes.TrimSuffix(line, []byte("\n"))))
			}
		}
		require.NoError(t, l.Append(sample(1, "app"), false))
		require.NoError(t, l.Export(context.Background(), Query{Limit: 1}, io.Discard))
	})
}

// memTempDir is a temporary directory in memory (/dev/shm) where the
// machine has one: every exec of FuzzSegment opens and closes a log, and
// on a disk the syncs that costs (and that other processes' writes slow
// down) would leave the fuzzer a few execs a second. t.TempDir otherwise.
func memTempDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "berth-audit-fuzz-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
