//go:build unix

package engine

// Events survive SIGKILL: a child process (this test binary again, with
// eventsCrashEnv set) pushes tagged manifests with a webhook pointing at a
// receiver in the parent and prints each acknowledged push; the parent
// kills it mid-push and mid-delivery, again and again, then opens the
// store itself and checks that the receiver got the event of every
// acknowledged push (duplicates allowed, counted). docs/events.md.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

const (
	// eventsCrashEnv names the child's store directory; the receiver's
	// URL and the secret follow in eventsCrashURLEnv and
	// eventsCrashSecretEnv, the run's number in eventsCrashRunEnv.
	eventsCrashEnv       = "BERTH_EVENTS_CRASH_CHILD"
	eventsCrashURLEnv    = "BERTH_EVENTS_CRASH_URL"
	eventsCrashSecretEnv = "BERTH_EVENTS_CRASH_SECRET"
	eventsCrashRunEnv    = "BERTH_EVENTS_CRASH_RUN"
)

var eventsCrashRepos = []string{"crash/a", "crash/b", "crash/c", "crash/d"}

func init() { testChildren[eventsCrashEnv] = runEventsCrashChild }

// eventsCrashOptions are the options of the child and of the parent's
// last open.
func eventsCrashOptions(url string, key []byte) *Options {
	return &Options{CreateOnPush: true, FrameSize: 64 << 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Webhooks: []Webhook{{Name: "ci", URL: url, Secret: key, Concurrency: 2,
			InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAttempts: 1000}}}
}

// runEventsCrashChild pushes until it is killed: four goroutines, one per
// repository, each tag printed once PutManifest returned ("ack REPO TAG").
func runEventsCrashChild(dir string) int {
	key, err := ParseWebhookSecret(os.Getenv(eventsCrashSecretEnv))
	if err != nil {
		return childFailed(err)
	}
	e, err := Open(dir, eventsCrashOptions(os.Getenv(eventsCrashURLEnv), key))
	if err != nil {
		return childFailed(err)
	}
	ctx := context.Background()
	run := os.Getenv(eventsCrashRunEnv)
	payloads := map[string][]byte{}
	for _, repo := range eventsCrashRepos {
		cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		cd, err := e.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
		if err != nil {
			return childFailed(err)
		}
		layer := []byte("layer of " + repo)
		ld, err := e.PutBlob(ctx, repo, bytes.NewReader(layer), digest.FromBytes(layer))
		if err != nil {
			return childFailed(err)
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size},
			Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: ld.Digest, Size: ld.Size}}}
		m.SchemaVersion = 2
		payloads[repo], _ = json.Marshal(m)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	var wg sync.WaitGroup
	for _, repo := range eventsCrashRepos {
		wg.Go(func() {
			for i := 0; ; i++ {
				tag := fmt.Sprintf("r%s-%05d", run, i)
				if _, err := e.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, payloads[repo]); err != nil {
					mu.Lock()
					fmt.Fprintf(w, "error: %v\n", err)
					w.Flush()
					mu.Unlock()
					return
				}
				mu.Lock()
				fmt.Fprintf(w, "ack %s %s\n", repo, tag)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 3
}

// TestEventsCrash kills a pushing, delivering child with SIGKILL at
// random moments and checks that no acknowledged push's event is lost.
func TestEventsCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	const kills = 8
	rcv := newReceiver(t, time.Now)
	// A receiver that refuses one delivery in four, so that kills land
	// with retries pending as well as deliveries in flight.
	rcv.refuseEvery = 4
	secret := NewWebhookSecret()
	key, err := ParseWebhookSecret(secret)
	require.NoError(t, err)
	rcv.key = key
	url := rcv.srv.URL + "/hook"
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	acked := map[string]bool{} // repo + " " + tag
	for run := range kills {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), eventsCrashEnv+"="+dir, eventsCrashURLEnv+"="+url,
			eventsCrashSecretEnv+"="+secret, fmt.Sprintf("%s=%d", eventsCrashRunEnv, run))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		select {
		case l := <-lines:
			require.Equal(t, "ready", l, stderr.String())
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("child not ready: %s", stderr.String())
		}
		// The kill must land at a random point of another process's real
		// work: a clock cannot serve.
		time.Sleep(time.Duration(100+r.IntN(300)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for l := range lines {
			if rest, ok := strings.CutPrefix(l, "ack "); ok {
				acked[rest] = true
			} else {
				t.Fatalf("child %d: %s", run, l)
			}
		}
		err = cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		require.True(t, ws.Signaled(), "child %d ended by itself (%v): %s", run, err, stderr.String())
	}
	require.NotEmpty(t, acked)

	// The parent opens the store with the same webhook: what the children
	// left queued or pending is delivered now.
	e, err := Open(dir, eventsCrashOptions(url, key))
	require.NoError(t, err)
	defer e.Close()
	missing := func() []string {
		seen := map[string]bool{}
		for _, g := range rcv.events() {
			ia := detailOf(t, g.ev)
			seen[ia.RepositoryName+" "+ia.ImageTag] = true
		}
		var out []string
		for k := range acked {
			if !seen[k] {
				out = append(out, k)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(missing()) == 0 }, 60*time.Second, 20*time.Millisecond,
		"acknowledged pushes without their event: %v", missing)
	// And the audit log records each (once per routing; a crash between
	// the record and the routing's commit records it again, same id).
	audited := map[string]bool{}
	require.NoError(t, e.AuditRecords(context.Background(), AuditQuery{Action: "berth:PublishEvent"}, func(r AuditRecord) error {
		audited[r.Repository+" "+r.Parameters["image-tag"]] = true
		return nil
	}))
	for k := range acked {
		require.True(t, audited[k], "%s is not in the audit log", k)
	}
	byID := map[string]int{}
	for _, g := range rcv.events() {
		byID[g.ev.ID]++
	}
	dups := 0
	for _, c := range byID {
		dups += c - 1
	}
	extra := len(byID) - len(acked) // events of pushes the kill cut before their ack was printed
	t.Logf("%d kills: %d acknowledged pushes, every one delivered; %d deliveries, %d distinct events (%d of pushes whose ack was not printed), %d duplicates",
		kills, len(acked), len(rcv.events()), len(byID), extra, dups)
	require.GreaterOrEqual(t, extra, 0)
}
