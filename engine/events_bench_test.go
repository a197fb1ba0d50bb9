package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/events"
)

// BenchmarkPutManifestEvents is BenchmarkPutManifestTag's push (a new tag
// on an existing manifest, one synced batch) with events off, on (queued
// in the push's batch, routed to the audit log), and on with a webhook
// receiving them on 127.0.0.1: what the event key costs a push. Serial,
// and 8 clients per core over 16 repositories.
func BenchmarkPutManifestEvents(b *testing.B) {
	ctx := context.Background()
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer rcv.Close()
	key, _ := ParseWebhookSecret(NewWebhookSecret())
	const spread = 16
	for _, mode := range []string{"off", "on", "webhook"} {
		o := &Options{CreateOnPush: true, Logger: slog.New(slog.DiscardHandler), DisableEvents: mode == "off"}
		if mode == "webhook" {
			o.Webhooks = []Webhook{{Name: "bench", URL: rcv.URL, Secret: key}}
		}
		e, err := Open(b.TempDir(), o)
		require.NoError(b, err)
		repos := make([]string, spread)
		payloads := make([][]byte, spread)
		for i := range repos {
			repos[i] = fmt.Sprintf("bench/par%02d", i)
			_, payloads[i] = pushFixtureRepo(b, e, repos[i], 1, 1)
		}
		var next atomic.Int64
		tag := func() string { return fmt.Sprintf("t%08d", next.Add(1)) }
		b.Run("events="+mode+"/serial", func(b *testing.B) {
			cpu := startCPU()
			for b.Loop() {
				if _, err := e.PutManifest(ctx, repos[0], tag(), ocispec.MediaTypeImageManifest, payloads[0]); err != nil {
					b.Fatal(err)
				}
			}
			cpu.reportOps(b)
		})
		b.Run("events="+mode+"/parallel-16repos", func(b *testing.B) {
			var worker atomic.Int64
			b.SetParallelism(8)
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				i := int(worker.Add(1)) % spread
				for pb.Next() {
					if _, err := e.PutManifest(ctx, repos[i], tag(), ocispec.MediaTypeImageManifest, payloads[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu.reportOps(b)
		})
		require.NoError(b, e.Close())
	}
}

// BenchmarkQueueEvent is what an event costs on the push's path: its
// encoding and its key in the batch (an image action with a tag).
func BenchmarkQueueEvent(b *testing.B) {
	e, err := Open(b.TempDir(), &Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	defer e.Close()
	const d = "sha256:0c2f4d7e1b3a5968a7c6d5e4f3b2a1908172635445362718291a0b1c2d3e4f5a"
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		batch := e.db.NewBatch()
		if err := e.events(batch).imageActions("team/app", events.ActionPush, d, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, []string{"v1"}, ""); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
	cpu.reportOps(b)
}
