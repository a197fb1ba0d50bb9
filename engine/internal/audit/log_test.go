package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestAppendAndQuery(t *testing.T) {
	clock := newFakeClock(t0)
	l, _ := openTest(t, &Options{Now: clock.Now, Region: "eu-west-1", AccountID: "123456789012"})

	for i := range 100 {
		r := sample(i, []string{"app", "team-a/api", "team-b/web"}[i%3])
		switch i % 10 {
		case 3:
			r.Decision, r.Statement = ExplicitDeny, `repository policy "repository/app" statement 1 (Sid "NoPush")`
			r.Action, r.ReadOnly = "ecr:PutImage", false
		case 7:
			r.Decision, r.Statement = ImplicitDeny, ""
			r.Action, r.ReadOnly = "ecr:BatchDeleteImage", false
		}
		require.NoError(t, l.Append(r, r.Decision.Denied()))
	}

	got := all(t, l, Query{})
	require.Len(t, got, 100)
	for i := 1; i < len(got); i++ {
		require.True(t, got[i-1].Time.After(got[i].Time), "newest first")
	}
	require.Equal(t, "req-99", got[0].RequestID)
	old := all(t, l, Query{Order: OldestFirst})
	require.Equal(t, "req-0", old[0].RequestID)
	require.WithinDuration(t, t0, old[0].Time, time.Millisecond)

	// Filters.
	require.Len(t, all(t, l, Query{Decision: ExplicitDeny}), 10)
	require.Len(t, all(t, l, Query{Decision: AnyDenial}), 20)
	require.Len(t, all(t, l, Query{Decision: Allow}), 80)
	require.Len(t, all(t, l, Query{Repository: "app"}), 34)
	require.Len(t, all(t, l, Query{Principal: "user3"}), 14)
	require.Len(t, all(t, l, Query{Principal: "arn:aws:iam::123456789012:user/user3"}), 14)
	require.Len(t, all(t, l, Query{Action: "ecr:PutImage"}), 10)
	require.Len(t, all(t, l, Query{Action: "ECR:*delete*"}), 10)
	require.Len(t, all(t, l, Query{Action: "ecr:Batch?etImage"}), 80)
	require.Len(t, all(t, l, Query{Action: "kms:*"}), 0)
	require.Len(t, all(t, l, Query{Repository: "app", Decision: AnyDenial}), 7)

	// Time bounds: Since inclusive, Until exclusive.
	r10 := old[10].Time
	r20 := old[20].Time
	got = all(t, l, Query{Since: r10, Until: r20, Order: OldestFirst})
	require.Len(t, got, 10)
	require.Equal(t, "req-10", got[0].RequestID)
	require.Equal(t, "req-19", got[9].RequestID)
	got = all(t, l, Query{Since: r10, Until: r20})
	require.Len(t, got, 10)
	require.Equal(t, "req-19", got[0].RequestID)

	// Limit: the newest, or the oldest.
	got = all(t, l, Query{Limit: 5, Decision: AnyDenial})
	require.Len(t, got, 5)
	require.Equal(t, "req-97", got[0].RequestID)
	got = all(t, l, Query{Limit: 3, Order: OldestFirst})
	require.Equal(t, []string{"req-0", "req-1", "req-2"}, []string{got[0].RequestID, got[1].RequestID, got[2].RequestID})

	// Append's fills: event ids, the error code of a denial.
	seen := map[string]bool{}
	for _, r := range old {
		require.Len(t, r.EventID, 36)
		require.False(t, seen[r.EventID])
		seen[r.EventID] = true
		if r.Decision.Denied() {
			require.Equal(t, "AccessDenied", r.ErrorCode)
		} else {
			require.Empty(t, r.ErrorCode)
		}
	}

	// fn's error ends the query and is returned.
	stop := errors.New("enough")
	n := 0
	err := l.Records(context.Background(), Query{}, func(Record) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, n)

	st := l.Status()
	require.True(t, st.Healthy)
	require.EqualValues(t, 100, st.Appended)
	require.Equal(t, 1, st.Segments)
	require.Equal(t, old[0].Time, st.Oldest)
	require.Equal(t, old[99].Time, st.Newest)
}

func TestRoundTrip(t *testing.T) {
	clock := newFakeClock(t0.Add(123456789 * time.Nanosecond))
	clock.step = 0
	l, _ := openTest(t, &Options{Now: clock.Now})
	in := Record{
		EventID:       "8f8a2b9e-0f3c-4d6e-9a51-0123456789ab",
		RequestID:     "r-1",
		PrincipalARN:  "arn:aws:iam::123456789012:user/al\"ice",
		Account:       "123456789012",
		UserName:      "al\"ice",
		UserID:        "AIDAABCDEFGHIJKLMNOPQ",
		PrincipalType: PrincipalIAMUser,
		SourceIP:      "2001:db8::1",
		UserAgent:     "ag\nent \u2028 \x01 ünï",
		Action:        "kms:CreateKey",
		Resource:      "arn:aws:kms:us-east-1:123456789012:key/k1",
		Parameters:    map[string]string{"keyId": "k1", "description": "x"},
		Decision:      Allow,
		Statement:     `identity policy "admin" statement 0`,
		Mutating:      true,
		ErrorCode:     "KMSInvalidStateException",
		ErrorMessage:  "already",
		API:           APIAdmin,
		Method:        "POST",
		Path:          "/admin/v1/keys",
	}
	require.NoError(t, l.Append(in, true))
	local := Record{PrincipalType: PrincipalLocal, UserName: "root", Action: "berth:CollectGarbage",
		Resource: "*", Decision: Allow, Mutating: true, API: APICLI}
	require.NoError(t, l.Append(local, true))
	anon := Record{PrincipalType: PrincipalAnonymous, PrincipalARN: "*", Action: "ecr:GetDownloadUrlForLayer",
		Resource: "arn:aws:ecr:us-east-1:123456789012:repository/pub", Repository: "pub",
		Decision: ImplicitDeny, API: APIOCI, Method: "GET", ReadOnly: true}
	require.NoError(t, l.Append(anon, true))

	got := all(t, l, Query{Order: OldestFirst})
	require.Len(t, got, 3)
	in.Time = t0.Add(123456789 * time.Nanosecond)
	require.Equal(t, in, got[0])
	require.Empty(t, got[1].Repository)
	require.Equal(t, "*", got[1].Resource)
	require.Equal(t, PrincipalLocal, got[1].PrincipalType)
	require.Equal(t, "berth:CollectGarbage", got[1].Action)
	require.Equal(t, "AccessDenied", got[2].ErrorCode)
	require.Equal(t, "pub", got[2].Repository)
	require.Equal(t, PrincipalAnonymous, got[2].PrincipalType)
}

func TestAppendRefusesInvalid(t *testing.T) {
	l, _ := openTest(t, nil)
	ok := sample(1, "app")
	for name, mut := range map[string]func(*Record){
		"no action":        func(r *Record) { r.Action = "" },
		"action no prefix": func(r *Record) { r.Action = "PutImage" },
		"action upper svc": func(r *Record) { r.Action = "ECR:PutImage" },
		"decision":         func(r *Record) { r.Decision = "Maybe" },
		"principal type":   func(r *Record) { r.PrincipalType = "Root" },
		"api":              func(r *Record) { r.API = "" },
		"resource":         func(r *Record) { r.Resource = "" },
		"resource not arn": func(r *Record) { r.Resource = "repository/app" },
		"param repo":       func(r *Record) { r.Parameters = map[string]string{"repositoryName": "x"} },
	} {
		r := ok
		mut(&r)
		require.ErrorIs(t, l.Append(r, false), ErrInvalidRecord, name)
	}
	// Long free text is cut, not refused.
	r := ok
	r.UserAgent = strings.Repeat("é", MaxTextBytes)
	r.Parameters = map[string]string{"imageTag": strings.Repeat("t", 3*MaxTextBytes)}
	require.NoError(t, l.Append(r, false))
	require.Len(t, r.Parameters["imageTag"], 3*MaxTextBytes, "the caller's map is left alone")
	got := all(t, l, Query{})
	require.Len(t, got, 1)
	require.LessOrEqual(t, len(got[0].UserAgent), MaxTextBytes)
	require.True(t, strings.HasSuffix(got[0].UserAgent, truncatedMark))
	require.True(t, strings.HasSuffix(got[0].Parameters["imageTag"], truncatedMark))
	require.Len(t, got[0].Parameters["imageTag"], MaxTextBytes)
	require.Equal(t, 0, l.Status().Segments-1)
}

func TestQueryRefusesInvalid(t *testing.T) {
	l, _ := openTest(t, nil)
	for _, q := range []Query{
		{Since: t0, Until: t0.Add(-time.Second)},
		{Limit: -1},
		{Decision: "allow"},
		{Order: 7},
	} {
		require.ErrorIs(t, l.Records(context.Background(), q, func(Record) error { return nil }), ErrInvalidQuery)
	}
}

func TestOptions(t *testing.T) {
	o := (&Options{}).EnsureDefaults()
	require.EqualValues(t, 64<<20, o.SegmentBytes)
	require.Equal(t, 90*24*time.Hour, o.MaxAge)
	require.EqualValues(t, 1<<30, o.MaxBytes)
	require.NoError(t, o.Validate())

	bad := (&Options{SegmentBytes: 1000, MaxBytes: 10}).EnsureDefaults()
	err := bad.Validate()
	require.ErrorIs(t, err, ErrInvalidOptions)
	require.Contains(t, err.Error(), "SegmentBytes")
	require.Contains(t, err.Error(), "MaxBytes")

	_, err = Open(t.TempDir(), &Options{MaxBytes: 1 << 20})
	require.ErrorIs(t, err, ErrInvalidOptions)

	// Open does not change the caller's options.
	mine := &Options{Logger: quietLogger()}
	l, err := Open(t.TempDir(), mine)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.Zero(t, mine.SegmentBytes)
}

func TestLocked(t *testing.T) {
	l, dir := openTest(t, nil)
	_, err := Open(dir, &Options{Logger: quietLogger()})
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Close(), ErrClosed)
	require.ErrorIs(t, l.Append(sample(1, "a"), false), ErrClosed)
	l2, err := Open(dir, &Options{Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, l2.Close())
}

func TestRotation(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 23, 59, 59, 0, time.UTC))
	l, dir := openTest(t, &Options{Now: clock.Now, SegmentBytes: 64 << 10})

	// The UTC day boundary.
	require.NoError(t, l.Append(sample(0, "app"), false))
	clock.Set(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	require.NoError(t, l.Append(sample(1, "app"), false))
	require.Equal(t, 2, l.Status().Segments)

	// The size: 64 KiB segments, ~0.8 KiB lines.
	for i := range 300 {
		require.NoError(t, l.Append(sample(i, "app"), false))
	}
	st := l.Status()
	require.GreaterOrEqual(t, st.Segments, 5)
	names := segmentFiles(t, dir)
	require.Len(t, names, st.Segments)
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		require.NoError(t, err)
		require.LessOrEqual(t, fi.Size(), int64(64<<10))
	}

	// The clock stepping back: a new segment, so times never go down in one.
	before := st.Segments
	clock.Set(time.Date(2026, 11, 24, 0, 0, 0, 500, time.UTC))
	require.NoError(t, l.Append(sample(1000, "app"), false))
	require.Equal(t, before+1, l.Status().Segments)

	// Every record is there, and a query of one day reads only its
	// segments.
	require.Len(t, all(t, l, Query{}), 303)
	day1 := Query{Until: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)}
	require.Len(t, all(t, l, day1), 1)
	require.Len(t, l.snapshot(compile(day1)), 1)

	// Reopen: the same records, appends go on in the last segment.
	require.NoError(t, l.Close())
	l2, err := Open(dir, &Options{Now: clock.Now, SegmentBytes: 64 << 10, Logger: quietLogger()})
	require.NoError(t, err)
	defer l2.Close()
	require.Len(t, all(t, l2, Query{}), 303)
	require.Equal(t, before+1, l2.Status().Segments)
	require.NoError(t, l2.Append(sample(1001, "app"), false))
	require.Equal(t, before+1, l2.Status().Segments)
	require.Equal(t, "req-1001", all(t, l2, Query{Limit: 1})[0].RequestID)
}

func TestClockStepBack(t *testing.T) {
	clock := newFakeClock(t0)
	l, _ := openTest(t, &Options{Now: clock.Now})
	for i := range 5 {
		require.NoError(t, l.Append(sample(i, "app"), false))
	}
	clock.Set(t0.Add(-time.Minute)) // the wall clock steps back a minute
	for i := 5; i < 10; i++ {
		require.NoError(t, l.Append(sample(i, "app"), false))
	}
	require.Equal(t, 2, l.Status().Segments)
	// A query of the minute before t0 finds the records of after the step
	// (in the second segment), not those of before it.
	got := all(t, l, Query{Since: t0.Add(-time.Minute), Until: t0, Order: OldestFirst})
	require.Len(t, got, 5)
	require.Equal(t, "req-5", got[0].RequestID)
	got = all(t, l, Query{Since: t0, Order: OldestFirst})
	require.Len(t, got, 5)
	require.Equal(t, "req-0", got[0].RequestID)
}

func TestRetention(t *testing.T) {
	day := 24 * time.Hour
	clock := newFakeClock(t0)
	clock.step = 0
	opts := &Options{Now: clock.Now, MaxAge: 3 * day, SegmentBytes: 64 << 10, MaxBytes: 1 << 20}
	l, dir := openTest(t, opts)
	// One segment a day for six days.
	for d := range 6 {
		clock.Set(t0.Add(time.Duration(d) * day))
		for i := range 10 {
			require.NoError(t, l.Append(sample(d*10+i, "app"), false))
		}
	}
	// Pruning runs in the background after a rotation; Close waits for
	// it. The segments of days 0 and 1 are past 3 days at day 5; that of
	// day 2 is exactly 3 days old and stays.
	require.NoError(t, l.Close())
	l, err := Open(dir, &Options{Now: clock.Now, MaxAge: 3 * day, SegmentBytes: 64 << 10, MaxBytes: 1 << 20, Logger: quietLogger()})
	require.NoError(t, err)
	defer l.Close()
	got := all(t, l, Query{Order: OldestFirst})
	require.Len(t, got, 40)
	require.Equal(t, "req-20", got[0].RequestID)
	require.Len(t, segmentFiles(t, dir), 4)

	// Time passes without appends: open prunes what expired meanwhile
	// (but never the last segment, which appends continue in).
	require.NoError(t, l.Close())
	clock.Set(t0.Add(30 * day))
	l, err = Open(dir, &Options{Now: clock.Now, MaxAge: 3 * day, SegmentBytes: 64 << 10, MaxBytes: 1 << 20, Logger: quietLogger()})
	require.NoError(t, err)
	require.Len(t, segmentFiles(t, dir), 1)
	require.NoError(t, l.Append(sample(100, "app"), false)) // another day: rotation, and the old one goes
	require.NoError(t, l.Close())
	names := segmentFiles(t, dir)
	require.Len(t, names, 1)
}

func TestRetentionBytes(t *testing.T) {
	clock := newFakeClock(t0)
	// 64 KiB segments within 256 KiB: at most 3 closed ones beside the
	// current.
	opts := &Options{Now: clock.Now, SegmentBytes: 64 << 10, MaxBytes: 256 << 10, Logger: quietLogger()}
	l, dir := openTest(t, opts)
	for i := range 2000 {
		require.NoError(t, l.Append(sample(i, "app"), false))
	}
	require.NoError(t, l.Close())
	var total int64
	for _, n := range segmentFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, n))
		require.NoError(t, err)
		total += fi.Size()
	}
	require.LessOrEqual(t, total, int64(256<<10))
	l, err := Open(dir, opts)
	require.NoError(t, err)
	defer l.Close()
	got := all(t, l, Query{})
	require.Equal(t, "req-1999", got[0].RequestID, "the newest records are kept")
	require.Greater(t, len(got), 200)
	require.Less(t, len(got), 2000)
	// What is kept is the newest run, without a gap.
	for i, r := range got {
		require.Equal(t, "req-"+itoa(1999-i), r.RequestID)
	}
}

func TestPlanPrune(t *testing.T) {
	day := 24 * time.Hour
	seg := func(seq uint64, lastDay int, size int64) *segment {
		return &segment{seq: seq, last: t0.Add(time.Duration(lastDay) * day), size: size}
	}
	o := &Options{MaxAge: 10 * day, MaxBytes: 100, SegmentBytes: 40}
	for _, tc := range []struct {
		name string
		segs []*segment
		now  int
		want []uint64
	}{
		{"nothing", []*segment{seg(1, 0, 10), seg(2, 1, 10)}, 2, nil},
		{"only current", []*segment{seg(1, 0, 1000)}, 100, nil},
		{"age", []*segment{seg(1, 0, 10), seg(2, 5, 10), seg(3, 11, 10), seg(4, 12, 0)}, 12, []uint64{1}},
		{"age keeps current", []*segment{seg(1, 0, 10), seg(2, 0, 10)}, 100, []uint64{1}},
		{"bytes", []*segment{seg(1, 1, 30), seg(2, 2, 30), seg(3, 3, 30), seg(4, 4, 30), seg(5, 4, 5)}, 4, []uint64{1, 2}},
		{"bytes fit", []*segment{seg(1, 1, 30), seg(2, 2, 30), seg(3, 4, 5)}, 4, nil},
		{"clock went back", []*segment{seg(1, 20, 10), seg(2, 0, 10), seg(3, 21, 10)}, 21, []uint64{2}},
	} {
		var got []uint64
		for _, s := range planPrune(tc.segs, t0.Add(time.Duration(tc.now)*day), o) {
			got = append(got, s.seq)
		}
		require.Equal(t, tc.want, got, tc.name)
	}
}

func TestTornTailRecovered(t *testing.T) {
	clock := newFakeClock(t0)
	opts := &Options{Now: clock.Now, Logger: quietLogger()}
	l, dir := openTest(t, opts)
	for i := range 10 {
		require.NoError(t, l.Append(sample(i, "app"), false))
	}
	require.NoError(t, l.Close())
	names := segmentFiles(t, dir)
	require.Len(t, names, 1)
	path := filepath.Join(dir, names[0])
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	// A crash in the middle of a write: half a line at the end.
	lines := bytes.SplitAfter(data, []byte("\n"))
	half := lines[3][:len(lines[3])/2]
	require.NoError(t, os.WriteFile(path, append(data, half...), 0o600))

	var logged bytes.Buffer
	opts.Logger = slogTo(&logged)
	l, err = Open(dir, opts)
	require.NoError(t, err)
	defer l.Close()
	require.EqualValues(t, len(half), l.Status().DroppedAtOpen)
	require.Contains(t, logged.String(), "torn line")
	require.Contains(t, logged.String(), "bytes="+itoa(len(half)))
	require.Len(t, all(t, l, Query{}), 10)
	// The next record is a line of its own.
	require.NoError(t, l.Append(sample(10, "app"), false))
	got := all(t, l, Query{})
	require.Len(t, got, 11)
	require.Equal(t, "req-10", got[0].RequestID)
}

func TestCorruptLinesSkipped(t *testing.T) {
	clock := newFakeClock(t0)
	opts := &Options{Now: clock.Now, Logger: quietLogger()}
	l, dir := openTest(t, opts)
	for i := range 5 {
		require.NoError(t, l.Append(sample(i, "app"), false))
	}
	require.NoError(t, l.Close())
	path := filepath.Join(dir, segmentFiles(t, dir)[0])
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	var damaged []byte
	for i, line := range lines {
		if i == 2 {
			damaged = append(damaged, "garbage\n\n"...)
			damaged = append(damaged, line[:40]...) // a line cut short, then another
			damaged = append(damaged, '\n')
			damaged = append(damaged, bytes.Repeat([]byte{0}, 100)...) // zeros, as a crash of the machine may leave
			damaged = append(damaged, '\n')
		}
		damaged = append(damaged, line...)
	}
	require.NoError(t, os.WriteFile(path, damaged, 0o600))
	var logged bytes.Buffer
	opts.Logger = slogTo(&logged)
	l, err = Open(dir, opts)
	require.NoError(t, err)
	defer l.Close()
	for _, order := range []Order{NewestFirst, OldestFirst} {
		got := all(t, l, Query{Order: order})
		require.Len(t, got, 5)
		var out bytes.Buffer
		require.NoError(t, l.Export(context.Background(), Query{Order: order}, &out))
		require.Equal(t, 5, bytes.Count(out.Bytes(), []byte("\n")))
	}
	require.Contains(t, logged.String(), "lines=4")
}

func TestExport(t *testing.T) {
	clock := newFakeClock(t0)
	l, dir := openTest(t, &Options{Now: clock.Now})
	for i := range 20 {
		r := sample(i, "app")
		if i%4 == 0 {
			r.Decision = ExplicitDeny
		}
		require.NoError(t, l.Append(r, false))
	}
	// Everything, oldest first, is the segment itself.
	var out bytes.Buffer
	require.NoError(t, l.Export(context.Background(), Query{Order: OldestFirst}, &out))
	data, err := os.ReadFile(filepath.Join(dir, segmentFiles(t, dir)[0]))
	require.NoError(t, err)
	require.Equal(t, string(data), out.String())

	out.Reset()
	require.NoError(t, l.Export(context.Background(), Query{Decision: ExplicitDeny}, &out))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 5)
	for _, line := range lines {
		r, err := decodeRecord([]byte(line))
		require.NoError(t, err)
		require.Equal(t, ExplicitDeny, r.Decision)
		require.Contains(t, line, `"errorCode":"AccessDenied"`)
	}
}

func TestContextCancel(t *testing.T) {
	l, _ := openTest(t, nil)
	for i := range 10 {
		require.NoError(t, l.Append(sample(i, "app"), false))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Records(ctx, Query{}, func(Record) error { return nil })
	require.ErrorIs(t, err, context.Canceled)
}

func TestConcurrentAppendAndQuery(t *testing.T) {
	l, _ := openTest(t, &Options{SegmentBytes: 64 << 10})
	var wg sync.WaitGroup
	const writers, each = 8, 300
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				r := sample(g*each+i, "app")
				require.NoError(t, l.Append(r, i%10 == 0))
			}
		})
	}
	done := make(chan struct{})
	var qerr error
	go func() {
		defer close(done)
		for {
			var prev time.Time
			err := l.Records(context.Background(), Query{}, func(r Record) error {
				if !prev.IsZero() && r.Time.After(prev) {
					return errors.New("not newest first")
				}
				prev = r.Time
				return nil
			})
			if err != nil {
				qerr = err
				return
			}
			if l.Status().Appended == writers*each {
				return
			}
		}
	}()
	wg.Wait()
	<-done
	require.NoError(t, qerr)
	got := all(t, l, Query{})
	require.Len(t, got, writers*each)
	ids := map[string]bool{}
	for _, r := range got {
		ids[r.RequestID] = true
	}
	require.Len(t, ids, writers*each)
}
