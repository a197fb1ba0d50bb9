package scan

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/berthstore/berth/scan/osv"
)

// debianSizedDB generates a database shaped like the Debian OSV export:
// records records over sources source packages, each with an affected
// entry for Debian 11, 12 and 13 (a fixed version, or none with a list of
// affected versions as DEBIAN-CVE records have), plus CVSS vectors.
func debianSizedDB(b *testing.B, records, sources int) *MemDB {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	db := NewMemDB()
	for i := range records {
		src := fmt.Sprintf("src%d", rng.IntN(sources))
		r := &osv.Record{
			ID:       fmt.Sprintf("DEBIAN-CVE-%d-%05d", 2000+i%25, i),
			Upstream: []string{fmt.Sprintf("CVE-%d-%05d", 2000+i%25, i)},
			Severity: []osv.Severity{{Type: osv.CVSSv3, Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
		}
		for rel, deb := range map[int]string{11: "deb11u", 12: "deb12u", 13: ""} {
			a := osv.Affected{Ecosystem: fmt.Sprintf("Debian:%d", rel), Name: src, Rating: "low"}
			if deb != "" && rng.IntN(4) > 0 {
				a.Ranges = []osv.Range{{Type: osv.RangeEcosystem, Events: []osv.Event{{Introduced: "0"}, {Fixed: fmt.Sprintf("1.%d-%d+%s%d", rng.IntN(20), 1+rng.IntN(5), deb, 1+rng.IntN(9))}}}}
			} else {
				a.Ranges = []osv.Range{{Type: osv.RangeEcosystem, Events: []osv.Event{{Introduced: "0"}}}}
				for v := range 8 {
					a.Versions = append(a.Versions, fmt.Sprintf("1.%d-%d", v, 1+rng.IntN(5)))
				}
			}
			r.Affected = append(r.Affected, a)
		}
		db.Add(r)
	}
	return db
}

// BenchmarkMatch measures matching throughput: the packages of a Debian
// 12 image (binary packages grouped into source packages, as in a real
// image) against a database the size of the Debian OSV export.
func BenchmarkMatch(b *testing.B) {
	const records, sources, packages = 60000, 4000, 400
	db := debianSizedDB(b, records, sources)
	rng := rand.New(rand.NewPCG(3, 4))
	inv := &Inventory{}
	for i := range packages {
		inv.Packages = append(inv.Packages, Package{
			Ecosystem:  "Debian:12",
			Name:       fmt.Sprintf("bin%d", i),
			Version:    fmt.Sprintf("1.%d-%d+deb12u%d", rng.IntN(20), 1+rng.IntN(5), rng.IntN(9)),
			SourceName: fmt.Sprintf("src%d", rng.IntN(sources)),
			Kind:       KindDeb,
			Location:   "/var/lib/dpkg/status",
		})
	}
	ctx := context.Background()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	var findings, recs int
	for b.Loop() {
		res, err := Match(ctx, inv, db)
		if err != nil {
			b.Fatal(err)
		}
		findings, recs = len(res.Findings), res.Stats.Records
	}
	b.StopTimer()
	b.ReportMetric(float64(packages*b.N)/b.Elapsed().Seconds(), "packages/s")
	// The CPU the process used (GC included), which a shared machine does
	// not distort as it does wall time.
	b.ReportMetric(float64(packages*b.N)/(cpuTime(b)-cpu0).Seconds(), "packages/cpu-s")
	b.ReportMetric(float64(findings), "findings/op")
	b.ReportMetric(float64(recs), "records/op")
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
