package engine

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthstore/berth/scan"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkPushScanOnPush pushes a new image per op (a config blob of its
// own and a manifest over a shared layer, the Debian fixture's rootfs)
// into a repository without scanOnPush ("off"), with it and no worker
// running ("queued": what the push itself pays, the job written in its
// batch), with it and a worker scanning each image as it comes
// ("scanning-eager", ScanQuietPeriod negative: the scans' share of the
// CPU, which pushes then compete for), and with the default worker,
// which waits for the pushes to pause ("scanning": here, until the loop
// ends). cpu-ns/op is the process's CPU per push, scans included.
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
		quiet   time.Duration
	}{{"off", false, 0, 0}, {"queued", true, -1, 0}, {"scanning-eager", true, 1, -1}, {"scanning", true, 1, 0}} {
		b.Run(tc.name, func(b *testing.B) {
			o := quietOptions()
			o.ScanWorkers = tc.workers
			o.ScanQuietPeriod = tc.quiet
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
				left, err := e.ScanQueue(ctx)
				if err != nil {
					b.Fatal(err)
				}
				// Scans still queued at the loop's end, per push.
				b.ReportMetric(float64(left)/float64(n), "scans-left/push")
				waitScans(b, e) // the scans the pushes queued are part of the CPU figure
			}
			cpu.reportOps(b)
		})
	}
}

// debianSizedExport writes a zip shaped like the Debian OSV export:
// records JSON records over sources source packages, each with an
// affected entry for Debian 11, 12 and 13 (a fixed version or a list of
// affected versions) and a CVSS vector.
func debianSizedExport(b *testing.B, path string, records, sources int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range records {
		src := fmt.Sprintf("src%d", rng.IntN(sources))
		var affected []string
		for _, rel := range []int{11, 12, 13} {
			var a string
			if rel != 13 && rng.IntN(4) > 0 {
				a = fmt.Sprintf(`{"package":{"ecosystem":"Debian:%d","name":"%s"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.%d-%d+deb%du%d"}]}],"ecosystem_specific":{"urgency":"low"}}`,
					rel, src, rng.IntN(20), 1+rng.IntN(5), rel, 1+rng.IntN(9))
			} else {
				var vs []string
				for v := range 8 {
					vs = append(vs, fmt.Sprintf(`"1.%d-%d"`, v, 1+rng.IntN(5)))
				}
				a = fmt.Sprintf(`{"package":{"ecosystem":"Debian:%d","name":"%s"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}],"versions":[%s]}`,
					rel, src, strings.Join(vs, ","))
			}
			affected = append(affected, a)
		}
		id := fmt.Sprintf("DEBIAN-CVE-%d-%05d", 2000+i%25, i)
		w, err := zw.Create(id + ".json")
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(w, `{"schema_version":"1.6.0","id":"%s","modified":"2024-01-01T00:00:00Z","upstream":["CVE-%d-%05d"],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],"affected":[%s]}`,
			id, 2000+i%25, i, strings.Join(affected, ","))
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkVulnDatabase imports a database the size of the Debian OSV
// export (60,000 records, 4,000 source packages) and matches the 400
// packages of a Debian 12 image against it through the engine's store:
// the first match of a version (records read from the index and
// decoded) and the later ones (decoded records shared).
func BenchmarkVulnDatabase(b *testing.B) {
	const records, sources, packages = 60000, 4000, 400
	ctx := context.Background()
	export := filepath.Join(b.TempDir(), "all.zip")
	debianSizedExport(b, export, records, sources)
	o := quietOptions()
	o.ScanWorkers = -1
	e := openTestEngine(b, o)
	start, cpu := time.Now(), startCPU()
	imp, err := e.ImportVulnerabilities(ctx, export)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("import of %d records: %v wall, %.2f s CPU", imp.Version.Records, time.Since(start).Round(time.Millisecond), (processCPU() - cpu.start).Seconds())
	rng := rand.New(rand.NewPCG(3, 4))
	inv := &scan.Inventory{}
	for i := range packages {
		inv.Packages = append(inv.Packages, scan.Package{
			Ecosystem: "Debian:12", Name: fmt.Sprintf("bin%d", i),
			Version:    fmt.Sprintf("1.%d-%d+deb12u%d", rng.IntN(20), 1+rng.IntN(5), rng.IntN(9)),
			SourceName: fmt.Sprintf("src%d", rng.IntN(sources)), Kind: scan.KindDeb, Location: "/var/lib/dpkg/status",
		})
	}
	view := &vulnView{e: e, ver: imp.Version.Version}
	for _, tc := range []struct {
		name string
		cold bool
	}{{"first", true}, {"later", false}} {
		b.Run(tc.name, func(b *testing.B) {
			var findings int
			cpu := startCPU()
			for b.Loop() {
				if tc.cold {
					e.vulns.cacheMu.Lock()
					e.vulns.cache = nil
					e.vulns.cacheMu.Unlock()
				}
				res, err := scan.Match(ctx, inv, view)
				if err != nil {
					b.Fatal(err)
				}
				findings = len(res.Findings)
			}
			b.ReportMetric(float64(packages*b.N)/b.Elapsed().Seconds(), "packages/s")
			b.ReportMetric(float64(findings), "findings/op")
			cpu.reportOps(b)
		})
	}
}
