package main

// The workloads. Each one starts a fresh server per target (so that the
// peak RSS is the workload's), runs, stops it and records its figures.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthstore/berth/engine"
)

// Params size the workloads.
type Params struct {
	// BigMiB is the size of the one big image.
	BigMiB int
	// SmallN and SmallKiB: how many small images, and their size.
	SmallN, SmallKiB int
	// Conc are the client counts.
	Conc []int
	// Dur is how long each HEAD/GET measurement runs.
	Dur time.Duration
	// Tags is the number of tags put on one manifest (and listed).
	Tags int
	// Repos is the number of repositories in the catalog workload.
	Repos int
	// DedupeN and DedupeKiB: the dedupe workload's images.
	DedupeN, DedupeKiB int
	// ColdManifests is the size of the cold-start and gc store.
	ColdManifests int
	// ListRepeat is how many times each listing is timed (median kept).
	ListRepeat int
	// Quick is the smoke run (--quick): workloads that would take long
	// even at small sizes measure less.
	Quick bool `json:"quick,omitempty"`
}

// Bench runs workloads and collects figures.
type Bench struct {
	P       Params
	Gen     *Gen
	Servers []*Server
	Work    string
	Res     *Results
	Logf    func(string, ...any)
	// Failed counts Berth failures (the exit status).
	Failed int
	// ProfileDir, when set, receives a CPU profile of each workload's
	// session (cpu-<workload>.pprof; --profile).
	ProfileDir string

	bigStore string
}

// Workload is one named workload.
type Workload struct {
	Name  string
	Title string
	Run   func(b *Bench, ctx context.Context) error
	// BerthOnly workloads run against registryd alone.
	BerthOnly bool
	// Columns, when set, are the workload's own columns: configurations
	// of registryd rather than the run's servers. The first is the
	// baseline the others are compared with, in place of the peers.
	Columns []string
}

// Workloads lists every workload in run order.
var Workloads = []Workload{
	{Name: "push-pull", Title: "Push and pull throughput", Run: (*Bench).pushPull},
	{Name: "manifest", Title: "Manifest HEAD/GET under concurrency", Run: (*Bench).manifest},
	{Name: "tags", Title: "Tagging one manifest, listing its tags, HEAD with many tags", Run: (*Bench).tags},
	{Name: "catalog", Title: "Catalog of many repositories", Run: (*Bench).catalog},
	{Name: "dedupe", Title: "Bytes on disk for images sharing base layers", Run: (*Bench).dedupe},
	{Name: "cold-start", Title: "Cold start (time until /v2/ answers)", Run: (*Bench).coldStart},
	{Name: "gc", Title: "gc, fsck and lifecycle on a large store (Berth only)", Run: (*Bench).gcLifecycle, BerthOnly: true},
	{Name: "fuse", Title: "FUSE view reads (Berth only)", Run: (*Bench).fuse, BerthOnly: true},
	{Name: AccessControlWorkload, Title: "Access control: authentication, a 20-statement identity policy, a repository policy and the audit log against an open registry (Berth only)",
		Run: (*Bench).accessControl, BerthOnly: true, Columns: []string{ACOff, ACPassword, ACToken, ACNoAudit}},
}

const mib = 1 << 20

// session starts s on a fresh directory, runs fn, stops s, records its
// peak RSS under workload and removes the directory unless keep is set
// (then after runs on it once the server is down).
func (b *Bench) session(ctx context.Context, workload string, s *Server, fn func(ctx context.Context, r *Running, c *Client) error, after func(dir string) error) error {
	dir := filepath.Join(b.Work, workload+"-"+s.Name)
	_ = os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	r, err := s.Start(ctx, dir)
	if err != nil {
		return err
	}
	c := NewClient(r.URL, 64)
	stopProfile := b.profileStart(workload)
	ferr := fn(ctx, r, c)
	stopProfile()
	// Drop idle connections first: http.Server.Shutdown waits up to 5 s
	// for connections that never carried a request (spare dials).
	c.Close()
	rss, serr := r.Stop()
	if rss > 0 {
		b.Res.Add(workload, "peak RSS", "MiB", false, s.Name, float64(rss)/mib)
	}
	if ferr != nil {
		return ferr
	}
	if serr != nil {
		return serr
	}
	if after != nil {
		return after(dir)
	}
	return nil
}

// eachServer runs fn for every server, noting failures instead of
// stopping the run.
func (b *Bench) eachServer(ctx context.Context, workload string, berthOnly bool, fn func(s *Server) error) error {
	for _, s := range b.Servers {
		if berthOnly && !s.IsBerth() {
			b.notePeerNotRun(workload, s)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.Logf("  %s: %s", workload, s.Name)
		if err := fn(s); err != nil {
			b.Res.Note(workload, fmt.Sprintf("%s failed: %v", s.Name, err))
			b.Logf("  %s: %s FAILED: %v", workload, s.Name, err)
			if s.IsBerth() {
				b.Failed++
			}
		}
	}
	return nil
}

// notePeerNotRun says in the report that peer s did not run a Berth-only
// workload, and why.
func (b *Bench) notePeerNotRun(workload string, s *Server) {
	b.Res.Note(workload, s.Name+": not run: the workload measures registryd's own commands (gc, fsck, lifecycle, mount), which "+s.Name+" has no counterpart of")
}

// parallel runs jobs 0..n-1 on workers goroutines; the first error stops
// the rest.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, job int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, j); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// load runs op on workers goroutines for d and returns the merged latency
// histogram and the elapsed time.
func load(ctx context.Context, workers int, d time.Duration, op func(ctx context.Context, worker, i int) error) (*Histogram, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hists := make([]*Histogram, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := range workers {
		hists[w] = &Histogram{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				t := time.Now()
				if err := op(ctx, w, i); err != nil {
					errs[w] = err
					cancel()
					return
				}
				hists[w].Record(time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := &Histogram{}
	for _, h := range hists {
		total.Merge(h)
	}
	return total, elapsed, errors.Join(errs...)
}

// clients is "1 client" or "N clients".
func clients(k int) string {
	if k == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", k)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (b *Bench) pushPull(ctx context.Context) error {
	const w = "push-pull"
	big, err := b.Gen.BigImage(b.P.BigMiB)
	if err != nil {
		return err
	}
	// Each client count pushes a set of its own: a server holds none of a
	// round's blobs when the round starts.
	small := map[int][]*Image{}
	for _, k := range b.P.Conc {
		if small[k], err = b.Gen.SmallImages(fmt.Sprintf("-c%d", k), b.P.SmallN, b.P.SmallKiB); err != nil {
			return err
		}
	}
	first := small[b.P.Conc[0]]
	var smallBytes int64
	for _, im := range first {
		smallBytes += im.Bytes()
	}
	b.Res.Note(w, fmt.Sprintf("big image: %.1f MiB in %d blobs; small images: %d of %.2f MiB on average (shared base layer, layers shared by 4, every 8th an index, every 4th with a referrer), a set of its own for each client count, each image into a repository of its own",
		float64(big.Bytes())/mib, len(big.Blobs), len(first), float64(smallBytes)/float64(len(first))/mib))
	b.Res.Note(w, "push throughput is the bytes of the images pushed per second (blobs and manifests), also when the server answers a blob's HEAD with 200 and the client sends nothing")
	return b.eachServer(ctx, w, false, func(s *Server) error {
		return b.session(ctx, w, s, func(ctx context.Context, r *Running, c *Client) error {
			t := time.Now()
			if _, err := c.PushImage(ctx, "big/app", big); err != nil {
				return err
			}
			b.Res.Add(w, "push big image, 1 client", "MiB/s", true, s.Name, float64(big.Bytes())/mib/time.Since(t).Seconds())
			for _, k := range b.P.Conc {
				if k > 8 {
					continue // k clients pulling the big image read k times its size
				}
				var got atomic.Int64
				t = time.Now()
				if err := parallel(ctx, k, k, func(ctx context.Context, _ int) error {
					n, err := c.PullImage(ctx, "big/app", big.Tag)
					got.Add(n)
					return err
				}); err != nil {
					return err
				}
				b.Res.Add(w, fmt.Sprintf("pull big image, %s", clients(k)), "MiB/s", true, s.Name, float64(got.Load())/mib/time.Since(t).Seconds())
			}
			for _, k := range b.P.Conc {
				set := small[k]
				var sent, pushed atomic.Int64
				t = time.Now()
				if err := parallel(ctx, k, len(set), func(ctx context.Context, i int) error {
					n, err := c.PushImage(ctx, fmt.Sprintf("small-c%d/img-%d", k, i), set[i])
					sent.Add(n)
					pushed.Add(set[i].Bytes())
					return err
				}); err != nil {
					return err
				}
				el := time.Since(t).Seconds()
				b.Res.Add(w, fmt.Sprintf("push small images, %s", clients(k)), "MiB/s", true, s.Name, float64(pushed.Load())/mib/el)
				if sent.Load() < pushed.Load()*9/10 {
					b.Res.Note(w, fmt.Sprintf("%s: push small images, %s: the client sent %.0f%% of the bytes: the server answers a blob's HEAD with 200 when another repository holds the blob (cross-repository dedupe), so shared layers were uploaded once, not once per repository",
						s.Name, clients(k), 100*float64(sent.Load())/float64(pushed.Load())))
				}
				var got atomic.Int64
				t = time.Now()
				if err := parallel(ctx, k, len(set), func(ctx context.Context, i int) error {
					n, err := c.PullImage(ctx, fmt.Sprintf("small-c%d/img-%d", k, i), set[i].Tag)
					got.Add(n)
					return err
				}); err != nil {
					return err
				}
				b.Res.Add(w, fmt.Sprintf("pull small images, %s", clients(k)), "MiB/s", true, s.Name, float64(got.Load())/mib/time.Since(t).Seconds())
			}
			return nil
		}, nil)
	})
}

func (b *Bench) manifest(ctx context.Context) error {
	const w = "manifest"
	const nTags = 16
	im, err := b.Gen.TinyImage("web")
	if err != nil {
		return err
	}
	return b.eachServer(ctx, w, false, func(s *Server) error {
		return b.session(ctx, w, s, func(ctx context.Context, r *Running, c *Client) error {
			if _, err := c.PushImage(ctx, "team/web", im); err != nil {
				return err
			}
			for i := range nTags {
				if err := c.PutManifest(ctx, "team/web", fmt.Sprintf("v%d", i), im.Top); err != nil {
					return err
				}
			}
			for _, method := range []string{"HEAD", "GET"} {
				for _, k := range b.P.Conc {
					h, el, err := load(ctx, k, b.P.Dur, func(ctx context.Context, worker, i int) error {
						ref := fmt.Sprintf("v%d", (worker+i)%nTags)
						if method == "HEAD" {
							return c.HeadManifest(ctx, "team/web", ref)
						}
						_, _, err := c.GetManifest(ctx, "team/web", ref)
						return err
					})
					if err != nil {
						return err
					}
					b.Res.Add(w, fmt.Sprintf("%s rps, %s", method, clients(k)), "req/s", true, s.Name, float64(h.Count())/el.Seconds())
					b.Res.Add(w, fmt.Sprintf("%s p50, %s", method, clients(k)), "ms", false, s.Name, ms(h.Percentile(50)))
					b.Res.Add(w, fmt.Sprintf("%s p99, %s", method, clients(k)), "ms", false, s.Name, ms(h.Percentile(99)))
				}
			}
			return nil
		}, nil)
	})
}

// timeList lists path ListRepeat times and returns the median time.
func (b *Bench) timeList(ctx context.Context, c *Client, path string, n, want int) (time.Duration, error) {
	var ts []time.Duration
	for range max(b.P.ListRepeat, 1) {
		t := time.Now()
		got, err := c.ListAll(ctx, path, n)
		if err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(t))
		if got < want {
			return 0, fmt.Errorf("%s: %d entries, want at least %d", path, got, want)
		}
	}
	slices.Sort(ts)
	return ts[len(ts)/2], nil
}

func (b *Bench) tags(ctx context.Context) error {
	const w = "tags"
	im, err := b.Gen.TinyImage("tagged")
	if err != nil {
		return err
	}
	k := 8
	if !slices.Contains(b.P.Conc, k) {
		k = b.P.Conc[len(b.P.Conc)-1]
	}
	return b.eachServer(ctx, w, false, func(s *Server) error {
		return b.session(ctx, w, s, func(ctx context.Context, r *Running, c *Client) error {
			for _, repo := range []string{"tags/many", "tags/one"} {
				if _, err := c.PushImage(ctx, repo, im); err != nil {
					return err
				}
			}
			t := time.Now()
			for i := range b.P.Tags {
				if err := c.PutManifest(ctx, "tags/many", fmt.Sprintf("t%05d", i), im.Top); err != nil {
					return err
				}
			}
			el := time.Since(t)
			b.Res.Add(w, fmt.Sprintf("tag one manifest %d times, 1 client", b.P.Tags), "s", false, s.Name, el.Seconds())
			d, err := b.timeList(ctx, c, "/v2/tags/many/tags/list", 0, b.P.Tags)
			if err != nil {
				return err
			}
			b.Res.Add(w, fmt.Sprintf("list %d tags", b.P.Tags), "ms", false, s.Name, ms(d))
			for _, repo := range []string{"tags/many", "tags/one"} {
				label := map[string]string{"tags/many": fmt.Sprintf("%d-tag repo", b.P.Tags+1), "tags/one": "1-tag repo"}[repo]
				h, el, err := load(ctx, k, b.P.Dur, func(ctx context.Context, worker, i int) error {
					return c.HeadManifest(ctx, repo, im.Tag)
				})
				if err != nil {
					return err
				}
				b.Res.Add(w, fmt.Sprintf("HEAD rps, %s, %d clients", label, k), "req/s", true, s.Name, float64(h.Count())/el.Seconds())
				b.Res.Add(w, fmt.Sprintf("HEAD p99, %s, %d clients", label, k), "ms", false, s.Name, ms(h.Percentile(99)))
			}
			return nil
		}, nil)
	})
}

func (b *Bench) catalog(ctx context.Context) error {
	const w = "catalog"
	im, err := b.Gen.TinyImage("cat")
	if err != nil {
		return err
	}
	return b.eachServer(ctx, w, false, func(s *Server) error {
		return b.session(ctx, w, s, func(ctx context.Context, r *Running, c *Client) error {
			if _, err := c.PushImage(ctx, "cat/seed", im); err != nil {
				return err
			}
			t := time.Now()
			if err := parallel(ctx, 16, b.P.Repos, func(ctx context.Context, i int) error {
				repo := fmt.Sprintf("cat/r%05d", i)
				for _, bl := range im.Blobs {
					if err := c.MountBlob(ctx, repo, "cat/seed", bl.Digest); err != nil {
						return err
					}
				}
				return c.PutManifest(ctx, repo, "v1", im.Top)
			}); err != nil {
				return err
			}
			b.Res.Add(w, fmt.Sprintf("create %d repositories (mount + manifest), 16 clients", b.P.Repos), "repos/s", true, s.Name, float64(b.P.Repos)/time.Since(t).Seconds())
			d, err := b.timeList(ctx, c, "/v2/_catalog", 1000, b.P.Repos)
			if err != nil {
				return err
			}
			b.Res.Add(w, fmt.Sprintf("catalog of %d repositories (pages of 1000)", b.P.Repos+1), "ms", false, s.Name, ms(d))
			return nil
		}, nil)
	})
}

// diskBytes is the space allocated to the files under dir, each file
// once however many hard links it has (zot's dedupe links one blob file
// into every repository that holds it).
func diskBytes(dir string) (int64, error) {
	var n int64
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			n += fi.Size()
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		n += st.Blocks * 512
		return nil
	})
	return n, err
}

// emptyStoreBytes starts s on an empty directory, stops it and returns
// the space its files take (pebble's preallocated files, for Berth).
func (b *Bench) emptyStoreBytes(ctx context.Context, s *Server) (int64, error) {
	dir := filepath.Join(b.Work, "empty-"+s.Name)
	_ = os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	r, err := s.Start(ctx, dir)
	if err != nil {
		return 0, err
	}
	if _, err := r.Stop(); err != nil {
		return 0, err
	}
	return diskBytes(dir)
}

func (b *Bench) dedupe(ctx context.Context) error {
	const w = "dedupe"
	ims, err := b.Gen.DedupeImages(b.P.DedupeN, b.P.DedupeKiB)
	if err != nil {
		return err
	}
	var logical int64
	unique := map[digest.Digest]int64{}
	for _, im := range ims {
		logical += im.Bytes()
		for _, bl := range im.Blobs {
			unique[bl.Digest] = int64(len(bl.Data))
		}
		unique[im.Top.Digest] = int64(len(im.Top.Data))
	}
	var uniq int64
	for _, n := range unique {
		uniq += n
	}
	b.Res.Note(w, fmt.Sprintf("%d images, %.1f MiB pushed in all, %.1f MiB of distinct blobs and manifests (layers: gzip OS base and plain-tar runtime shared by all, zstd framework shared by 5, plain-tar app each)",
		len(ims), float64(logical)/mib, float64(uniq)/mib))
	return b.eachServer(ctx, w, false, func(s *Server) error {
		empty, err := b.emptyStoreBytes(ctx, s)
		if err != nil {
			return err
		}
		return b.session(ctx, w, s, func(ctx context.Context, r *Running, c *Client) error {
			return parallel(ctx, 4, len(ims), func(ctx context.Context, i int) error {
				_, err := c.PushImage(ctx, fmt.Sprintf("svc/app-%d", i), ims[i])
				return err
			})
		}, func(dir string) error {
			n, err := diskBytes(dir)
			if err != nil {
				return err
			}
			b.Res.Add(w, "bytes on disk", "MiB", false, s.Name, float64(n)/mib)
			b.Res.Add(w, "bytes on disk of an empty store", "MiB", false, s.Name, float64(empty)/mib)
			b.Res.Add(w, "disk growth / distinct bytes", "x", false, s.Name, float64(n-empty)/float64(uniq))
			b.Res.Add(w, "disk growth / bytes pushed", "x", false, s.Name, float64(n-empty)/float64(logical))
			return nil
		})
	})
}

// populate fills a Berth store in-process with n image manifests spread
// over 100 repositories (each tagged), sharing one config and layer, and
// leaves orphans unreferenced blobs for gc to sweep. It returns the
// directory (made once per run).
func (b *Bench) populate(ctx context.Context, n, orphans int) (string, error) {
	if b.bigStore != "" {
		return b.bigStore, nil
	}
	dir := filepath.Join(b.Work, "bigstore")
	_ = os.RemoveAll(dir)
	t := time.Now()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := engine.Open(dir, &engine.Options{CreateOnPush: true, Logger: quiet})
	if err != nil {
		return "", err
	}
	im, err := b.Gen.TinyImage("store")
	if err != nil {
		_ = eng.Close()
		return "", err
	}
	const repos = 100
	var cfg ocispec.Descriptor
	var layer ocispec.Descriptor
	for _, bl := range im.Blobs {
		if bl.MediaType == ocispec.MediaTypeImageConfig {
			cfg = bl.descriptor()
		} else {
			layer = bl.descriptor()
		}
	}
	for i := range repos {
		for _, bl := range im.Blobs {
			if _, err := eng.PutBlob(ctx, fmt.Sprintf("store/r%03d", i), bytes.NewReader(bl.Data), bl.Digest); err != nil {
				_ = eng.Close()
				return "", err
			}
		}
	}
	err = parallel(ctx, 16, n, func(ctx context.Context, i int) error {
		m := ocispec.Manifest{
			Versioned:   specs.Versioned{SchemaVersion: 2},
			MediaType:   ocispec.MediaTypeImageManifest,
			Config:      cfg,
			Layers:      []ocispec.Descriptor{layer},
			Annotations: map[string]string{"build": fmt.Sprint(i)},
		}
		data := mustJSON(m)
		_, err := eng.PutManifest(ctx, fmt.Sprintf("store/r%03d", i%repos), string(digest.FromBytes(data)), m.MediaType, data, fmt.Sprintf("b%06d", i))
		return err
	})
	if err == nil {
		err = parallel(ctx, 8, orphans, func(ctx context.Context, i int) error {
			p := make([]byte, 4096)
			fillRandom(b.Gen.rng(fmt.Sprintf("orphan/%d", i)), p)
			_, err := eng.PutBlob(ctx, "store/orphans", bytes.NewReader(p), digest.FromBytes(p))
			return err
		})
	}
	if cerr := eng.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	el := time.Since(t)
	b.Res.Add("cold-start", fmt.Sprintf("fill a store with %d manifests (engine API, in-process, 16 goroutines)", n), "manifests/s", true, "berth", float64(n)/el.Seconds())
	b.bigStore = dir
	return dir, nil
}

func (b *Bench) coldStart(ctx context.Context) error {
	const w = "cold-start"
	err := b.eachServer(ctx, w, false, func(s *Server) error {
		return b.session(ctx, w, s, func(ctx context.Context, r *Running, c *Client) error {
			b.Res.Add(w, "cold start, empty store", "ms", false, s.Name, ms(r.Ready))
			return nil
		}, nil)
	})
	if err != nil {
		return err
	}
	var berth *Server
	for _, s := range b.Servers {
		if s.Name == "berth" {
			berth = s
		}
	}
	if berth == nil {
		return nil
	}
	dir, err := b.populate(ctx, b.P.ColdManifests, b.P.ColdManifests/200)
	if err != nil {
		b.Failed++
		b.Res.Note(w, "populate failed: "+err.Error())
		return nil
	}
	r, err := berth.Start(ctx, dir)
	if err != nil {
		b.Failed++
		b.Res.Note(w, "berth on the large store failed: "+err.Error())
		return nil
	}
	ready := r.Ready
	c := NewClient(r.URL, 4)
	herr := c.HeadManifest(ctx, "store/r007", "b000007")
	c.Close()
	rss, _ := r.Stop()
	if herr != nil {
		b.Failed++
		b.Res.Note(w, "HEAD on the large store failed: "+herr.Error())
	}
	b.Res.Note(w, fmt.Sprintf("the store of %d manifests is Berth's alone (filled through the engine API, in-process); the peers start on an empty store only", b.P.ColdManifests))
	b.Res.Add(w, fmt.Sprintf("cold start, %d manifests", b.P.ColdManifests), "ms", false, "berth", ms(ready))
	b.Res.Add(w, fmt.Sprintf("peak RSS, %d manifests", b.P.ColdManifests), "MiB", false, "berth", float64(rss)/mib)
	return nil
}

// runCLI runs registryd with args and env (added to this process's),
// returning its stdout, wall time and peak RSS.
func runCLI(ctx context.Context, bin string, env []string, args ...string) ([]byte, time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, 0, err
	}
	// Sample VmHWM while it runs (see Running.Stop for why not rusage).
	var rss int64
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	for waiting := true; waiting; {
		if v := procStatusBytes(cmd.Process.Pid, "VmHWM:"); v > rss {
			rss = v
		}
		select {
		case err = <-done:
			waiting = false
		case <-time.After(10 * time.Millisecond):
		}
	}
	el := time.Since(t)
	if err != nil {
		return out.Bytes(), el, rss, fmt.Errorf("registryd %v: %w: %s", args, err, lastLines(errb.String(), 3))
	}
	return out.Bytes(), el, rss, nil
}

func (b *Bench) gcLifecycle(ctx context.Context) error {
	const w = "gc"
	var berth *Server
	for _, s := range b.Servers {
		if s.Name == "berth" {
			berth = s
		}
	}
	if berth == nil {
		return errors.New("no berth server")
	}
	for _, s := range b.Servers {
		if !s.IsBerth() {
			b.notePeerNotRun(w, s)
		}
	}
	orphans := b.P.ColdManifests / 200
	dir, err := b.populate(ctx, b.P.ColdManifests, orphans)
	if err != nil {
		b.Failed++
		return err
	}
	fail := func(err error) error {
		b.Failed++
		b.Res.Note(w, err.Error())
		return nil
	}
	out, el, rss, err := runCLI(ctx, berth.Bin, nil, "gc", "--data", dir, "--grace", "0", "--json")
	if err != nil {
		return fail(err)
	}
	var rep struct {
		BlobsSwept int `json:"blobsSwept"`
	}
	_ = json.Unmarshal(out, &rep)
	b.Res.Add(w, fmt.Sprintf("registryd gc, %d manifests, %d unreferenced blobs", b.P.ColdManifests, orphans), "s", false, "berth", el.Seconds())
	b.Res.Add(w, "registryd gc peak RSS", "MiB", false, "berth", float64(rss)/mib)
	b.Res.Note(w, fmt.Sprintf("gc swept %d blobs (%d unreferenced were made)", rep.BlobsSwept, orphans))
	_, el, rss, err = runCLI(ctx, berth.Bin, nil, "fsck", "--data", dir, "--no-verify", "--json")
	if err != nil {
		return fail(err)
	}
	b.Res.Add(w, "registryd fsck --no-verify", "s", false, "berth", el.Seconds())
	b.Res.Add(w, "registryd fsck peak RSS", "MiB", false, "berth", float64(rss)/mib)
	// Variants with an environment of their own (--berth-variant, such as
	// another GOMEMLIMIT) check the same store: fsck only reads it.
	for _, s := range b.Servers {
		if !s.IsBerth() || s.Name == "berth" || len(s.Env) == 0 {
			continue
		}
		_, el, rss, err := runCLI(ctx, s.Bin, s.Env, "fsck", "--data", dir, "--no-verify", "--json")
		if err != nil {
			return fail(fmt.Errorf("%s: %w", s.Name, err))
		}
		b.Res.Add(w, "registryd fsck --no-verify", "s", false, s.Name, el.Seconds())
		b.Res.Add(w, "registryd fsck peak RSS", "MiB", false, s.Name, float64(rss)/mib)
	}
	policy := `{"rules":[{"rulePriority":1,"description":"keep 10","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}`
	pf := filepath.Join(b.Work, "policy.json")
	if err := os.WriteFile(pf, []byte(policy), 0o600); err != nil {
		return err
	}
	perRepo := b.P.ColdManifests / 100
	_, el, _, err = runCLI(ctx, berth.Bin, nil, "lifecycle", "preview", "--data", dir, "--repo", "store/r001", "--policy", pf, "--json")
	if err != nil {
		return fail(err)
	}
	b.Res.Add(w, fmt.Sprintf("lifecycle preview, %d images, keep 10", perRepo), "s", false, "berth", el.Seconds())
	_, el, _, err = runCLI(ctx, berth.Bin, nil, "lifecycle", "apply", "--data", dir, "--repo", "store/r001", "--policy", pf, "--json")
	if err != nil {
		return fail(err)
	}
	b.Res.Add(w, fmt.Sprintf("lifecycle apply, %d images, keep 10", perRepo), "s", false, "berth", el.Seconds())
	return nil
}

// fuseAvailable says why the FUSE view cannot run here ("" when it can).
func fuseAvailable() string {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "no /dev/fuse"
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if _, err := exec.LookPath("fusermount"); err != nil {
			return "no fusermount3 (apt-get install fuse3)"
		}
	}
	return ""
}

// readTree reads every regular file under dir and returns the bytes read
// and the number of files.
func readTree(dir string) (int64, int, error) {
	var total int64
	files := 0
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(io.Discard, f, buf)
		_ = f.Close()
		total += n
		files++
		return err
	})
	return total, files, err
}

func (b *Bench) fuse(ctx context.Context) error {
	const w = "fuse"
	if why := fuseAvailable(); why != "" {
		b.Res.Note(w, "skipped: "+why)
		return nil
	}
	big, err := b.Gen.BigImage(b.P.BigMiB)
	if err != nil {
		return err
	}
	return b.eachServer(ctx, w, true, func(s *Server) error {
		dir := filepath.Join(b.Work, "fuse-"+s.Name)
		_ = os.RemoveAll(dir)
		defer os.RemoveAll(dir)
		r, err := s.Start(ctx, dir)
		if err != nil {
			return err
		}
		c := NewClient(r.URL, 4)
		_, perr := c.PushImage(ctx, "big/app", big)
		c.Close()
		if _, err := r.Stop(); err != nil || perr != nil {
			return errors.Join(perr, err)
		}
		mnt := filepath.Join(b.Work, "mnt-"+s.Name)
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			return err
		}
		cmd := exec.Command(s.Bin, "mount", "--data", dir, mnt)
		cmd.Env = append(os.Environ(), s.Env...)
		errb := &tailBuffer{}
		cmd.Stdout, cmd.Stderr = errb, errb
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			return err
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		var hwm int64
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = exec.Command("fusermount3", "-uz", mnt).Run()
				_ = cmd.Process.Kill()
				<-exited
			}
		}()
		root := filepath.Join(mnt, "big", "app", "@tags", big.Tag, "rootfs")
		t := time.Now()
		for {
			if _, err := os.Stat(filepath.Join(mnt, "big")); err == nil {
				break
			}
			select {
			case <-exited:
				return fmt.Errorf("registryd mount exited: %v: %s", waitErr, errb.String())
			case <-time.After(5 * time.Millisecond):
			}
			if time.Since(t) > 30*time.Second {
				return fmt.Errorf("mount did not appear: %s", errb.String())
			}
		}
		b.Res.Add(w, "mount until the view answers", "ms", false, s.Name, ms(time.Since(t)))
		type pass struct {
			n     int64
			files int
			el    time.Duration
			err   error
		}
		runPass := func() pass {
			ch := make(chan pass, 1)
			go func() {
				t := time.Now()
				n, files, err := readTree(root)
				ch <- pass{n, files, time.Since(t), err}
			}()
			select {
			case p := <-ch:
				return p
			case <-time.After(5 * time.Minute):
				return pass{err: errors.New("reading the view took over 5 minutes")}
			}
		}
		cold := runPass()
		if cold.err != nil {
			return cold.err
		}
		hwm = procStatusBytes(cmd.Process.Pid, "VmHWM:")
		warm := runPass()
		if warm.err != nil {
			return warm.err
		}
		if v := procStatusBytes(cmd.Process.Pid, "VmHWM:"); v > hwm {
			hwm = v
		}
		b.Res.Note(w, fmt.Sprintf("%s: the big image's rootfs, %d files, %.1f MiB uncompressed", s.Name, cold.files, float64(cold.n)/mib))
		b.Res.Add(w, "first read of every file (tables of contents built on the way)", "MiB/s", true, s.Name, float64(cold.n)/mib/cold.el.Seconds())
		b.Res.Add(w, "second read of every file", "MiB/s", true, s.Name, float64(warm.n)/mib/warm.el.Seconds())
		b.Res.Add(w, "registryd mount peak RSS", "MiB", false, s.Name, float64(hwm)/mib)
		return nil
	})
}
