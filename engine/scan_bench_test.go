package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkPushScanOnPush pushes a new image per op (a config blob of its
// own and a manifest over a shared layer, the Debian fixture's rootfs)
// into a repository without scanOnPush ("off"), with it and no worker
// running ("queued": what the push itself pays, the job written in its
// batch), and with it and the default worker scanning each image as it
// comes ("scanning": the scans' share of the CPU, which pushes then
// compete for). cpu-ns/op is the process's CPU per push, scans included.
func BenchmarkPushScanOnPush(b *testing.B) {
	ctx := context.Background()
	layer, err := rootfsTar("debian")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		scan    bool
		workers int
	}{{"off", false, 0}, {"queued", true, -1}, {"scanning", true, 1}} {
		b.Run(tc.name, func(b *testing.B) {
			o := quietOptions()
			o.ScanWorkers = tc.workers
			o.DisableAudit = true
			e := openTestEngine(b, o)
			if _, err := e.CreateRepository(ctx, "bench/scan", RepositorySettings{ScanOnPush: tc.scan}); err != nil {
				b.Fatal(err)
			}
			ld, err := e.PutBlob(ctx, "bench/scan", bytes.NewReader(layer), digest.FromBytes(layer))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			cpu := startCPU()
			for b.Loop() {
				n++
				cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"n":%d}`, ld.Digest, n))
				cd, err := e.PutBlob(ctx, "bench/scan", bytes.NewReader(cfg), digest.FromBytes(cfg))
				if err != nil {
					b.Fatal(err)
				}
				m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
					Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size},
					Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: ld.Digest, Size: ld.Size}}}
				m.SchemaVersion = 2
				payload, _ := json.Marshal(m)
				if _, err := e.PutManifest(ctx, "bench/scan", fmt.Sprintf("t%d", n), ocispec.MediaTypeImageManifest, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if tc.workers >= 0 && tc.scan {
				waitScans(b, e) // the scans the pushes queued are part of the CPU figure
			}
			cpu.reportOps(b)
		})
	}
}
