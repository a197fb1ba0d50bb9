package e2e

// Benchmarks of image scanning against a real registryd (in process, on
// 127.0.0.1): the inventory of a realistic image through the layer
// tables against unpacking it with `crane export | tar -x`, and pushes
// per second with scan on push on and off. Each runs once
// (-benchtime=1x) and reports its figures as metrics and log lines;
// bench/RESULTS.md, section "Scanning", has the commands and a run.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/internal/scanfixture"
	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/registryd/cli"
)

// benchServer is an in-process registryd started for a benchmark.
type benchServer struct {
	addr string
	stop func()
}

// startBenchServer runs registryd's Serve over cfg (Addr set to a free
// loopback port) until stop is called.
func startBenchServer(tb testing.TB, cfg cli.Config) *benchServer {
	tb.Helper()
	cfg.Addr = "127.0.0.1:0"
	cfg.AccessLog = false
	cfg.LogLevel = "warn"
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- cli.Serve(ctx, &cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), ready)
	}()
	select {
	case a := <-ready:
		var once sync.Once
		s := &benchServer{addr: a.String()}
		s.stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					tb.Error(err)
				}
			})
		}
		tb.Cleanup(s.stop)
		return s
	case err := <-done:
		cancel()
		tb.Fatalf("registryd did not start: %v", err)
	}
	return nil
}

// usage is the CPU time of this process and of its waited-for children.
type usage struct{ wall, self, children time.Duration }

func nowUsage(tb testing.TB) usage {
	var s, c syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &s); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c); err != nil {
		tb.Fatal(err)
	}
	cpu := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return usage{wall: time.Duration(time.Now().UnixNano()), self: cpu(s), children: cpu(c)}
}

// since is the wall time and the CPU (this process and children) spent
// since u.
func (u usage) since(tb testing.TB) (wall, cpu time.Duration) {
	n := nowUsage(tb)
	return n.wall - u.wall, (n.self - u.self) + (n.children - u.children)
}

// hostRootfs is a Debian root filesystem made from the host: the
// packages of priority required and important and the essential ones
// (what debootstrap installs by default), each with the files its
// /var/lib/dpkg/info/PKG.list names under /usr, /etc and /var/lib/dpkg,
// their dpkg info files, /var/lib/dpkg/status cut to them, and the
// merged-/usr top-level links; and a Go toolchain, /usr/local/go
// (GOROOT), in a layer of its own. Layers are gzip tars (best speed)
// written to dir. Entries counts the tar entries of both.
type hostRootfs struct {
	base, toolchain string
	packages        int
	entries         int
}

// buildHostRootfs writes the two layers.
func buildHostRootfs(tb testing.TB, dir string) hostRootfs {
	tb.Helper()
	goroot := runtime.GOROOT()
	if _, err := os.Stat(filepath.Join(goroot, "bin", "go")); err != nil {
		testenv.Missing(tb, "a Go toolchain at GOROOT: %v", err)
	}
	r := hostRootfs{base: filepath.Join(dir, "base.tar.gz"), toolchain: filepath.Join(dir, "toolchain.tar.gz")}
	r.packages, r.entries = writeHostBase(tb, r.base, false)
	r.entries += writeLayer(tb, r.toolchain, func(w *layerWriter) {
		err := filepath.WalkDir(goroot, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(goroot, p)
			w.add(p, "", filepath.Join("/usr/local/go", rel))
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	})
	return r
}

// writeHostBase writes the Debian base layer of hostRootfs (what
// debootstrap installs, taken from the host) as a gzip tar at path, and
// returns how many packages and tar entries it holds. With mergedUsr,
// the files the packages list under /lib, /lib64, /bin and /sbin, which
// a merged-/usr host links to /usr, are taken too, under /usr (the
// shared libraries, the shells: what a debootstrap of a merged-/usr
// Debian holds there); without it only the packages' /usr, /etc and
// /var/lib/dpkg files are (the scanning benchmark's image, as its
// recorded figures were measured). With mergedUsr the packages'
// dependencies are taken too, as debootstrap resolves them.
func writeHostBase(tb testing.TB, path string, mergedUsr bool) (packages, entries int) {
	tb.Helper()
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		testenv.Missing(tb, "a Debian host (/var/lib/dpkg/status): %v", err)
	}
	var kept []string
	paths := map[string]bool{}
	pkgs := 0
	stanzas := strings.Split(strings.TrimSpace(string(status)), "\n\n")
	fields := func(stanza string) map[string]string {
		f := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				f[k] = strings.TrimSpace(v)
			}
		}
		return f
	}
	// With mergedUsr, the packages' dependencies too (as debootstrap
	// resolves them: libc6 is of priority optional).
	wanted := map[string]bool{}
	if mergedUsr {
		installed := map[string]map[string]string{}
		var queue []string
		for _, stanza := range stanzas {
			f := fields(stanza)
			if !strings.HasPrefix(f["Status"], "install ok installed") {
				continue
			}
			installed[f["Package"]] = f
			if f["Priority"] == "required" || f["Priority"] == "important" || f["Essential"] == "yes" {
				queue = append(queue, f["Package"])
			}
		}
		for len(queue) > 0 {
			name := queue[0]
			queue = queue[1:]
			if wanted[name] {
				continue
			}
			wanted[name] = true
			f := installed[name]
			for _, dep := range strings.Split(f["Depends"]+","+f["Pre-Depends"], ",") {
				for _, alt := range strings.Split(dep, "|") {
					n, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
					n, _, _ = strings.Cut(n, ":")
					if _, ok := installed[n]; ok && n != "" {
						queue = append(queue, n)
						break
					}
				}
			}
		}
	}
	for _, stanza := range stanzas {
		f := fields(stanza)
		if !strings.HasPrefix(f["Status"], "install ok installed") {
			continue
		}
		if f["Priority"] != "required" && f["Priority"] != "important" && f["Essential"] != "yes" && !wanted[f["Package"]] {
			continue
		}
		kept = append(kept, stanza)
		pkgs++
		info, _ := filepath.Glob("/var/lib/dpkg/info/" + f["Package"] + ".*")
		more, _ := filepath.Glob("/var/lib/dpkg/info/" + f["Package"] + ":" + f["Architecture"] + ".*")
		for _, p := range append(info, more...) {
			paths[p] = true
			if strings.HasSuffix(p, ".list") {
				list, err := os.ReadFile(p)
				if err != nil {
					tb.Fatal(err)
				}
				for _, l := range strings.Split(string(list), "\n") {
					if strings.HasPrefix(l, "/usr/") || strings.HasPrefix(l, "/etc/") || strings.HasPrefix(l, "/var/lib/dpkg/") {
						paths[l] = true
					} else if mergedUsr {
						if top, _, ok := strings.Cut(strings.TrimPrefix(l, "/"), "/"); ok {
							if t, err := os.Readlink("/" + top); err == nil && t == "usr/"+top {
								paths["/usr"+l] = true
							}
						}
					}
				}
			}
		}
	}
	paths["/etc/os-release"] = true
	for _, p := range []string{"/var/lib/dpkg/available", "/var/lib/dpkg/diversions", "/var/lib/dpkg/statoverride"} {
		paths[p] = true
	}
	var list []string
	for p := range paths {
		if p == "/var/lib/dpkg/status" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			list = append(list, p)
		}
	}
	entries = writeLayer(tb, path, func(w *layerWriter) {
		for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
			if t, err := os.Readlink("/" + l); err == nil {
				w.add("/"+l, t)
			}
		}
		for _, p := range list {
			w.add(p, "")
		}
		w.file("/var/lib/dpkg/status", []byte(strings.Join(kept, "\n\n")+"\n"))
	})
	return pkgs, entries
}

// layerWriter writes one layer's tar, parents before children.
type layerWriter struct {
	tb      testing.TB
	tw      *tar.Writer
	dirs    map[string]bool
	entries int
}

func writeLayer(tb testing.TB, path string, fill func(w *layerWriter)) int {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	w := &layerWriter{tb: tb, tw: tar.NewWriter(zw), dirs: map[string]bool{"/": true}}
	fill(w)
	for _, c := range []io.Closer{w.tw, zw} {
		if err := c.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return w.entries
}

// parents writes the directories above name not written yet.
func (w *layerWriter) parents(name string) {
	d := filepath.Dir(name)
	if w.dirs[d] {
		return
	}
	w.parents(d)
	w.dirs[d] = true
	w.header(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755}, nil)
}

func (w *layerWriter) header(h *tar.Header, body io.Reader) {
	h.ModTime = time.Unix(1700000000, 0)
	h.Uname, h.Gname = "", ""
	if err := w.tw.WriteHeader(h); err != nil {
		w.tb.Fatal(err)
	}
	if body != nil {
		if _, err := io.Copy(w.tw, body); err != nil {
			w.tb.Fatal(err)
		}
	}
	w.entries++
}

// add writes host file src as name (src when absent): a directory, a
// symlink (to target when given), or a regular file; others are left out.
func (w *layerWriter) add(src, target string, name ...string) {
	dst := src
	if len(name) > 0 {
		dst = name[0]
	}
	if w.dirs[dst] {
		return
	}
	fi, err := os.Lstat(src)
	if err != nil {
		w.tb.Fatal(err)
	}
	w.parents(dst)
	rel := strings.TrimPrefix(dst, "/")
	switch {
	case target != "" || fi.Mode()&fs.ModeSymlink != 0:
		if target == "" {
			if target, err = os.Readlink(src); err != nil {
				w.tb.Fatal(err)
			}
		}
		w.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: rel, Linkname: target, Mode: 0o777}, nil)
	case fi.IsDir():
		w.dirs[dst] = true
		w.header(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: int64(fi.Mode().Perm())}, nil)
	case fi.Mode().IsRegular():
		f, err := os.Open(src)
		if err != nil {
			w.tb.Fatal(err)
		}
		defer f.Close()
		w.header(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: fi.Size(), Mode: int64(fi.Mode().Perm())}, f)
	}
}

// file writes a regular file of content.
func (w *layerWriter) file(name string, content []byte) {
	w.parents(name)
	w.header(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(name, "/"), Size: int64(len(content)), Mode: 0o644}, bytes.NewReader(content))
}

// packageKeys are an inventory's packages as comparable lines.
func packageKeys(inv *engine.ScanInventory) []string {
	var out []string
	for _, p := range inv.Packages {
		out = append(out, fmt.Sprintf("%s %s %s %s %s", p.Location, p.Ecosystem, p.Name, p.Version, p.SourceName))
	}
	return out
}

// BenchmarkScanInventory takes the inventory of a realistic image (a
// Debian rootfs of the host's required and important packages and a Go
// toolchain, about 23,000 files in two gzip layers, pushed to registryd)
// two ways, alternately, twice: through the layer tables
// (engine.ImageFS and engine.TakeInventory on a store just opened: no
// block, frame or tree cache of the engine is warm; the layer tables
// were built once before, as the first scan or mount of the image
// builds them, and that indexing is timed on its own), and by unpacking
// it (`crane export REF - | tar -x -C DIR` from a registryd just
// started, then engine.TakeInventory(os.DirFS(DIR))). The page cache is
// not dropped for either (the machine is shared): both read the same
// store files. Each round also takes the inventory through the layer
// tables without the facts they record about executables (factless:
// every executable opened for its ELF magic, as before the tables had
// them). The inventories must be equal. Run with -benchtime=1x.
func BenchmarkScanInventory(b *testing.B) {
	crane := testenv.NeedTool(b, "crane")
	testenv.NeedTool(b, "tar")
	ctx := context.Background()
	work := b.TempDir()
	start := nowUsage(b)
	img := buildHostRootfs(b, work)
	wall, _ := start.since(b)
	b.Logf("image: %d packages, %d tar entries (base and toolchain layers), built in %v", img.packages, img.entries, wall.Round(time.Millisecond))

	cfg := cli.DefaultConfig()
	cfg.Data = filepath.Join(work, "store")
	cfg.CreateOnPush = true
	srv := startBenchServer(b, cfg)
	var layers []v1.Layer
	for _, p := range []string{img.base, img.toolchain} {
		l, err := tarball.LayerFromFile(p)
		if err != nil {
			b.Fatal(err)
		}
		layers = append(layers, l)
	}
	image, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		b.Fatal(err)
	}
	ref := srv.addr + "/realistic/debian-go:1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	start = nowUsage(b)
	if err := remote.Write(r, image, remote.WithContext(ctx)); err != nil {
		b.Fatal(err)
	}
	wall, _ = start.since(b)
	b.Logf("pushed %s in %v", ref, wall.Round(time.Millisecond))
	srv.stop()
	for _, p := range []string{img.base, img.toolchain} {
		fi, _ := os.Stat(p)
		b.Logf("layer %s: %.1f MiB gzip", filepath.Base(p), float64(fi.Size())/(1<<20))
	}

	eopts, err := cfg.EngineOptions()
	if err != nil {
		b.Fatal(err)
	}
	eopts.ScanWorkers = -1
	eopts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	openEngine := func() *engine.Engine {
		e, err := engine.Open(cfg.Data, eopts)
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	// The layer tables, built once (decompressing each gzip layer into
	// a stored tar and indexing its entries), as the first scan builds them.
	e := openEngine()
	start = nowUsage(b)
	ifs, err := e.ImageFS(ctx, "realistic/debian-go", "1", nil)
	if err != nil {
		b.Fatal(err)
	}
	indexWall, indexCPU := start.since(b)
	merged := len(ifs.Tree().Inodes)
	ifs.Close()
	e.Close()
	b.Logf("indexing the layer tables (once per layer): %v wall, %v CPU; merged tree %d inodes", indexWall.Round(time.Millisecond), indexCPU.Round(time.Millisecond), merged)

	var tablesInv, exportInv *engine.ScanInventory
	var tw, tc, ew, ec, nw, nc []time.Duration
	for round := range 2 {
		// Unpacking: registryd serving, crane export piped into tar.
		srv := startBenchServer(b, cfg)
		dir := filepath.Join(work, fmt.Sprintf("unpacked%d", round))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		start := nowUsage(b)
		cmd := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", `"$0" export --insecure "$1" - | tar -x -C "$2"`, crane, srv.addr+"/realistic/debian-go:1", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("crane export | tar -x: %v\n%s", err, out)
		}
		unpackWall, _ := start.since(b)
		inv, err := engine.TakeInventory(ctx, os.DirFS(dir))
		if err != nil {
			b.Fatal(err)
		}
		w, c := start.since(b)
		ew, ec, exportInv = append(ew, w), append(ec, c), inv
		b.Logf("round %d, crane export | tar -x, then inventory: %v wall (unpack %v), %v CPU; %d files, %d packages",
			round+1, w.Round(time.Millisecond), unpackWall.Round(time.Millisecond), c.Round(time.Millisecond), inv.Files, len(inv.Packages))
		srv.stop()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}

		// Through the layer tables, on a store just opened.
		e := openEngine()
		start = nowUsage(b)
		ifs, err := e.ImageFS(ctx, "realistic/debian-go", "1", nil)
		if err != nil {
			b.Fatal(err)
		}
		openWall, openCPU := start.since(b)
		inv, err = engine.TakeInventory(ctx, ifs)
		if err != nil {
			b.Fatal(err)
		}
		w, c = start.since(b)
		tw, tc, tablesInv = append(tw, w), append(tc, c), inv
		ifs.Close()
		e.Close()
		b.Logf("round %d, layer tables (ImageFS + inventory, store just opened): %v wall, %v CPU (ImageFS: tables read and merged %v wall, %v CPU); %d files, %d packages",
			round+1, w.Round(time.Millisecond), c.Round(time.Millisecond), openWall.Round(time.Millisecond), openCPU.Round(time.Millisecond), inv.Files, len(inv.Packages))

		// The same without the tables' facts: every executable opened
		// for its ELF magic, as the inventory did before they existed.
		e = openEngine()
		start = nowUsage(b)
		ifs, err = e.ImageFS(ctx, "realistic/debian-go", "1", nil)
		if err != nil {
			b.Fatal(err)
		}
		inv, err = engine.TakeInventory(ctx, factless{ifs})
		if err != nil {
			b.Fatal(err)
		}
		w, c = start.since(b)
		nw, nc = append(nw, w), append(nc, c)
		ifs.Close()
		e.Close()
		if !slices.Equal(packageKeys(inv), packageKeys(tablesInv)) {
			b.Fatalf("the inventories with and without facts differ:\nwith: %v\nwithout: %v", packageKeys(tablesInv), packageKeys(inv))
		}
		b.Logf("round %d, layer tables without their facts (every executable opened): %v wall, %v CPU", round+1, w.Round(time.Millisecond), c.Round(time.Millisecond))
	}
	if !slices.Equal(packageKeys(tablesInv), packageKeys(exportInv)) {
		b.Fatalf("the inventories differ:\nlayer tables: %v\nunpacked: %v", packageKeys(tablesInv), packageKeys(exportInv))
	}
	if tablesInv.OS == nil || exportInv.OS == nil || *tablesInv.OS != *exportInv.OS {
		b.Fatalf("the OS differs: %+v against %+v", tablesInv.OS, exportInv.OS)
	}
	kinds := map[string]int{}
	for _, p := range tablesInv.Packages {
		kinds[string(p.Kind)]++
	}
	b.Logf("inventories equal: %d packages %v, OS %s %s; problems: layer tables %d, unpacked %d",
		len(tablesInv.Packages), kinds, tablesInv.OS.ID, tablesInv.OS.VersionID, len(tablesInv.Problems), len(exportInv.Problems))
	best := func(d []time.Duration) time.Duration { return slices.Min(d) }
	b.Logf("best of 2: layer tables %v wall %v CPU; unpacking %v wall %v CPU; %.1fx faster (wall), %.1fx less CPU",
		best(tw).Round(time.Millisecond), best(tc).Round(time.Millisecond), best(ew).Round(time.Millisecond), best(ec).Round(time.Millisecond),
		float64(best(ew))/float64(best(tw)), float64(best(ec))/float64(best(tc)))
	b.Logf("best of 2 without the facts: %v wall %v CPU; %.1fx faster than unpacking (wall); the facts make the inventory %.1fx faster",
		best(nw).Round(time.Millisecond), best(nc).Round(time.Millisecond), float64(best(ew))/float64(best(nw)), float64(best(nw))/float64(best(tw)))
	b.ReportMetric(best(nw).Seconds(), "tables-nofacts-s")
	b.ReportMetric(float64(img.entries), "files")
	b.ReportMetric(best(tw).Seconds(), "tables-s")
	b.ReportMetric(best(tc).Seconds(), "tables-cpu-s")
	b.ReportMetric(best(ew).Seconds(), "unpack-s")
	b.ReportMetric(best(ec).Seconds(), "unpack-cpu-s")
	b.ReportMetric(indexWall.Seconds(), "index-once-s")
	b.ReportMetric(float64(best(ew))/float64(best(tw)), "speedup-x")
	for b.Loop() {
	}
}

// factless is an image filesystem whose directory entries do not carry
// the layer tables' facts (scan.BinaryHinter): the inventory opens every
// executable, as it did before the tables recorded them.
type factless struct{ *engine.ImageFS }

func (f factless) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := f.ImageFS.ReadDir(name)
	for i, d := range ents {
		info, ierr := d.Info()
		if ierr != nil {
			return nil, ierr
		}
		ents[i] = fs.FileInfoToDirEntry(plainInfo{info})
	}
	return ents, err
}

// plainInfo has only fs.FileInfo's methods.
type plainInfo struct{ fs.FileInfo }

// BenchmarkScanOnPushThroughput pushes small images (a shared base
// layer, the Debian fixture's rootfs, already in the repository, and a
// 4 KiB layer and a config of their own) with go-containerregistry from
// 4 clients into a real registryd, in alternating 5-second phases:
// into a repository without scanOnPush, then into one with it, six
// times each. Three servers: scan workers off (-1: the push writes the
// scan job, nothing scans: what the push itself pays), a worker that
// scans as images come (--scan-quiet-period -1: scans compete with the
// pushes for the cores) and the default worker (scans wait for a quiet
// moment: while pushes keep coming, up to the engine's ScanMaxYield,
// 30 s, longer than a phase). After each phase the scan backlog is
// drained (untimed; its time and CPU are logged), so a phase's scans are
// counted in it. Run with -benchtime=1x.
func BenchmarkScanOnPushThroughput(b *testing.B) {
	const clients, phases = 4, 6
	phase := 5 * time.Second
	ctx := context.Background()
	dir := b.TempDir()
	if err := scanfixture.Build(scanDir, "debian", dir); err != nil {
		if errors.Is(err, scanfixture.ErrMissing) {
			testenv.Missing(b, "%v", err)
		}
		b.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		b.Fatal(err)
	}
	tw.Close()
	data := buf.Bytes()
	base, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		b.Fatal(err)
	}
	authDir := b.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	htpasswd := filepath.Join(authDir, "htpasswd")
	creds := filepath.Join(authDir, "ecr-credentials")
	if err := os.WriteFile(htpasswd, []byte("admin:"+string(hash)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(creds, []byte(testAccessKey+":"+testSecretKey+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: "pw"})
	servers := []struct {
		label, unit string
		workers     int
		quiet       time.Duration
	}{
		{"queued only (no scan worker)", "queued", -1, 0},
		{"with the scan worker, not waiting for pushes to pause", "eager", 1, -1},
		{"with the scan worker (default: waits for pushes to pause)", "workers", 1, 0},
	}
	for _, sv := range servers {
		label, workers := sv.label, sv.workers
		cfg := cli.DefaultConfig()
		cfg.Data = b.TempDir()
		cfg.Htpasswd, cfg.ECRCredentials, cfg.CreateOnPush = htpasswd, creds, true
		cfg.ScanWorkers = workers
		cfg.ScanQuietPeriod = cli.Duration(sv.quiet)
		srv := startBenchServer(b, cfg)
		c := ecrClient(srv.addr, "")
		for _, repo := range []string{"bench/off", "bench/on"} {
			_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo),
				ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: repo == "bench/on"}})
			if err != nil {
				b.Fatal(err)
			}
			seed, _ := mutate.AppendLayers(empty.Image, base)
			r, _ := name.ParseReference(srv.addr+"/"+repo+":seed", name.Insecure)
			if err := remote.Write(r, seed, auth); err != nil {
				b.Fatal(err)
			}
		}
		var pushed atomic.Int64
		// runPhase returns the pushes per second and the pushes made.
		runPhase := func(repo string) (float64, int64) {
			pctx, cancel := context.WithTimeout(ctx, phase)
			defer cancel()
			var n atomic.Int64
			var wg sync.WaitGroup
			t0 := time.Now()
			for range clients {
				wg.Go(func() {
					for pctx.Err() == nil {
						own, err := random.Layer(4096, ggcrtypes.OCILayer)
						if err != nil {
							b.Error(err)
							return
						}
						im, _ := mutate.AppendLayers(empty.Image, base, own)
						r, _ := name.ParseReference(fmt.Sprintf("%s/%s:p%d", srv.addr, repo, pushed.Add(1)), name.Insecure)
						if err := remote.Write(r, im, auth); err != nil {
							b.Error(err)
							return
						}
						n.Add(1)
					}
				})
			}
			wg.Wait()
			return float64(n.Load()) / time.Since(t0).Seconds(), n.Load()
		}
		drain := func() time.Duration {
			t0 := time.Now()
			if workers < 0 {
				return 0
			}
			for {
				busy := false
				p := ecr.NewDescribeImagesPaginator(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("bench/on"), MaxResults: aws.Int32(1000)})
				for p.HasMorePages() && !busy {
					out, err := p.NextPage(ctx)
					if err != nil {
						b.Fatal(err)
					}
					for _, d := range out.ImageDetails {
						if d.ImageScanStatus != nil && d.ImageScanStatus.Status == types.ScanStatusInProgress {
							busy = true
							break
						}
					}
				}
				if !busy {
					return time.Since(t0)
				}
				// Polling the daemon's scan statuses over its API: no
				// clock of ours says when its worker is done.
				time.Sleep(100 * time.Millisecond)
			}
		}
		// CPU per push is this process's CPU (clients, server and the
		// scans of the phase's pushes, drain included) over the pushes;
		// the CPU of the phase alone (the pushes, and whatever scans ran
		// during them) is logged too.
		var off, on, ratios, offCPU, onCPU, onPhaseCPU []float64
		for i := range phases {
			u := nowUsage(b)
			rate, n := runPhase("bench/off")
			drain()
			_, c := u.since(b)
			off, offCPU = append(off, rate), append(offCPU, float64(c.Microseconds())/float64(n))
			u = nowUsage(b)
			rate, n = runPhase("bench/on")
			_, cp := u.since(b)
			d := drain()
			_, c = u.since(b)
			on, onCPU = append(on, rate), append(onCPU, float64(c.Microseconds())/float64(n))
			onPhaseCPU = append(onPhaseCPU, float64(cp.Microseconds())/float64(n))
			ratios = append(ratios, on[i]/off[i])
			b.Logf("%s, round %d: off %.1f pushes/s %.0f µs CPU/push, on %.1f pushes/s %.0f µs CPU/push (%.0f µs in the phase, %v CPU in the drain); %d scans queued, the queue empty %v after the phase",
				label, i+1, off[i], offCPU[i], on[i], onCPU[i], onPhaseCPU[i], (c - cp).Round(time.Millisecond), n, d.Round(time.Millisecond))
		}
		mean := func(v []float64) float64 {
			s := 0.0
			for _, x := range v {
				s += x
			}
			return s / float64(len(v))
		}
		median := func(v []float64) float64 {
			v = slices.Clone(v)
			slices.Sort(v)
			if len(v)%2 == 0 {
				return (v[len(v)/2-1] + v[len(v)/2]) / 2
			}
			return v[len(v)/2]
		}
		diff := (mean(on) - mean(off)) / mean(off) * 100
		b.Logf("%s: off %.1f pushes/s, on %.1f pushes/s (mean of %d phases of %v, %d clients): %+.1f%%; median of the paired ratios %+.1f%%; CPU per push off %.0f µs, on %.0f µs (%+.1f%%; in the phase alone %.0f µs)",
			label, mean(off), mean(on), phases, phase, clients, diff, (median(ratios)-1)*100, mean(offCPU), mean(onCPU), (mean(onCPU)-mean(offCPU))/mean(offCPU)*100, mean(onPhaseCPU))
		unit := sv.unit
		b.ReportMetric(mean(off), unit+"-off-push/s")
		b.ReportMetric(mean(on), unit+"-on-push/s")
		b.ReportMetric(diff, unit+"-diff-%")
		srv.stop()
	}
	for b.Loop() {
	}
}
