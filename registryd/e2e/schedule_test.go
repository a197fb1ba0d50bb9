package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/engine/enginetest"
)

// awsKeepOneUntagged is the policy of the ECR user guide's "Examples of
// lifecycle policies", "Filtering on image count", as it is printed there.
const awsKeepOneUntagged = `{
    "rules": [
        {
            "rulePriority": 1,
            "description": "Keep only one untagged image, expire all others",
            "selection": {
                "tagStatus": "untagged",
                "countType": "imageCountMoreThan",
                "countNumber": 1
            },
            "action": {
                "type": "expire"
            }
        }
    ]
}`

// Sizes of the scheduled-cleanup store: repositories, and the bytes of
// each expirable image's own layer (random: it does not compress).
const (
	scheduleRepos     = 200
	scheduleLayerSize = 64 << 10
)

// scheduleRepo is what seedSchedule pushed into one repository: a tagged
// multi-platform index ("release") over two untagged platform manifests
// (pushed first: the oldest untagged manifests of the repository), three
// untagged images, and a tagged image ("v1").
type scheduleRepo struct {
	index    digest.Digest
	children []digest.Digest
	untagged []digest.Digest
	tagged   digest.Digest
}

// seedSchedule fills the store in data, in-process, before any daemon
// holds it (pushing a thousand images through the HTTP API would make
// the test long and prove nothing more about schedules).
func seedSchedule(t *testing.T, data string) map[string]scheduleRepo {
	t.Helper()
	ctx := context.Background()
	e, err := engine.Open(data, &engine.Options{CreateOnPush: true, Logger: enginetest.QuietLogger()})
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	untagged := func(repo, tag string, layer []byte) enginetest.Image {
		img := enginetest.PushImage(t, e, repo, tag, layer)
		require.NoError(t, e.DeleteTag(ctx, repo, tag))
		return img
	}
	out := map[string]scheduleRepo{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for repo := range work {
				var s scheduleRepo
				idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
				idx.SchemaVersion = 2
				for _, arch := range []string{"amd64", "arm64"} {
					img := untagged(repo, "tmp-"+arch, random(4096))
					s.children = append(s.children, img.Digest)
					idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest,
						Digest: img.Digest, Size: int64(len(img.Manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: arch}})
				}
				payload, err := json.Marshal(idx)
				require.NoError(t, err)
				res, err := e.PutManifest(ctx, repo, "release", ocispec.MediaTypeImageIndex, payload)
				require.NoError(t, err)
				s.index = res.Digest
				for i := range 3 {
					s.untagged = append(s.untagged, untagged(repo, fmt.Sprintf("build-%d", i), random(scheduleLayerSize)).Digest)
				}
				s.tagged = enginetest.PushImage(t, e, repo, "v1", random(4096)).Digest
				mu.Lock()
				out[repo] = s
				mu.Unlock()
			}
		}()
	}
	for i := range scheduleRepos {
		work <- fmt.Sprintf("team/app-%03d", i)
	}
	close(work)
	wg.Wait()
	return out
}

// scheduleDaemon is a registryd child process whose log the test reads.
type scheduleDaemon struct {
	*daemon
	mu  sync.Mutex
	log bytes.Buffer
}

// startScheduleDaemon runs bin serve over data with args, its log at
// info level kept for the test, and waits until it answers.
func startScheduleDaemon(t *testing.T, bin, data string, args ...string) *scheduleDaemon {
	t.Helper()
	d := &scheduleDaemon{daemon: &daemon{addr: freePort(t), done: make(chan struct{})}}
	d.cmd = exec.Command(bin, append([]string{"serve", "--addr", d.addr, "--data", data, "--access-log=false", "--log-level", "info"}, args...)...)
	stderr, err := d.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, d.cmd.Start())
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.log.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
	}()
	go func() { <-logged; _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(d.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + d.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("registryd exited before it served:\n%s", d.logText())
		default:
		}
		require.True(t, time.Now().Before(deadline), "registryd did not start: %v", err)
		// Polling a child process that binds its port when it is ready:
		// no clock of ours can tell when that is.
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *scheduleDaemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// stop ends the daemon with SIGTERM (a graceful shutdown) and waits.
func (d *scheduleDaemon) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Fatal("registryd did not stop")
	}
}

// metric reads one sample of the daemon's /metrics ("" when absent).
func (d *scheduleDaemon) metric(t *testing.T, sample string) string {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// waitMetric polls the daemon's /metrics until sample reads at least n.
func (d *scheduleDaemon) waitMetric(t *testing.T, sample string, n float64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, err := strconv.ParseFloat(d.metric(t, sample), 64)
		if err == nil && v >= n {
			return
		}
		require.True(t, time.Now().Before(deadline), "%s did not reach %v:\n%s", sample, n, d.logText())
		// The daemon runs on the system's clock, in another process:
		// polling is the only way to see its schedule act.
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits until the daemon has logged a line matching re.
func (d *scheduleDaemon) waitLog(t *testing.T, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for !rx.MatchString(d.logText()) {
		require.True(t, time.Now().Before(deadline), "no log line matches %s:\n%s", re, d.logText())
		// The log comes through a pipe from another process.
		time.Sleep(10 * time.Millisecond)
	}
}

// blobBytes is the size of the store's blob files on disk.
func blobBytes(t *testing.T, data string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.WalkDir(filepath.Join(data, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	}))
	return n
}

// auditCount counts the lines of the audit log in data that hold s.
func auditCount(t *testing.T, data, s string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(data, "audit", "*.jsonl"))
	require.NoError(t, err)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		n += bytes.Count(b, []byte(s))
	}
	return n
}

// manifests lists every manifest of repo through the ECR API (tagged and
// untagged; children of an index included).
func manifests(t *testing.T, c *ecr.Client, repo string) map[digest.Digest]bool {
	t.Helper()
	out := map[digest.Digest]bool{}
	p := ecr.NewListImagesPaginator(c, &ecr.ListImagesInput{RepositoryName: aws.String(repo)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, id := range page.ImageIds {
			out[digest.Digest(aws.ToString(id.ImageDigest))] = true
		}
	}
	return out
}

// fsckClean runs `registryd fsck` on the store (no daemon holds it).
func fsckClean(t *testing.T, bin, data string) string {
	t.Helper()
	out, err := exec.Command(bin, "fsck", "--data", data).CombinedOutput()
	require.NoError(t, err, "fsck: %s", out)
	require.Contains(t, string(out), ": 0 corrupt, 0 orphans")
	return strings.TrimSpace(string(out))
}

// TestScheduleExpiresWhatThePreviewListed: registryd serve with a 2 s
// lifecycle interval and the AWS documentation's "keep only one untagged
// image" policy on 200 repositories expires, with no admin call, exactly
// what each repository's preview (StartLifecyclePolicyPreview and
// GetLifecyclePolicyPreview through the AWS SDK, read back after a
// restart) listed; never the untagged platform manifests of a kept index;
// and a SIGKILL in the middle of the run loses nothing: each repository is
// either done or untouched, fsck is clean, and the next start resumes the
// run, which finishes the work. The collection after it brings the bytes
// back (the store's blob files, measured before and after), fsck is
// clean, and the metrics and the audit log show the runs and each image
// expired (principal type Local, user system, naming the rule).
//
// A real registryd binary in a child process, so that it can be killed:
// its schedule runs on the system's clock (an engine clock is only for an
// engine in the test's own process), hence a short interval and polling.
func TestScheduleExpiresWhatThePreviewListed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildRegistryd(t)
	data := filepath.Join(dir, "store")
	seeded := seedSchedule(t, data)
	repos := slices.Sorted(maps.Keys(seeded))

	// 1. Schedules off: the policies, and their previews through the AWS SDK.
	d := startScheduleDaemon(t, bin, data, "--lifecycle-interval", "0", "--gc-interval", "0")
	d.waitLog(t, "lifecycle schedule off")
	c := ecrClient(d.addr, "")
	before := map[string]map[digest.Digest]bool{}
	listed := map[string][]digest.Digest{}
	total := 0
	for _, repo := range repos {
		before[repo] = manifests(t, c, repo)
		require.Len(t, before[repo], 7, repo)
		_, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(repo), LifecyclePolicyText: aws.String(awsKeepOneUntagged)})
		require.NoError(t, err)
		start, err := c.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String(repo)})
		require.NoError(t, err)
		require.Equal(t, types.LifecyclePolicyPreviewStatusComplete, start.Status, "a small repository is evaluated at once")
		p := ecr.NewGetLifecyclePolicyPreviewPaginator(c, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String(repo), MaxResults: aws.Int32(1)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			require.NoError(t, err)
			require.Equal(t, types.LifecyclePolicyPreviewStatusComplete, page.Status)
			require.Equal(t, int32(2), aws.ToInt32(page.Summary.ExpiringImageTotalCount))
			for _, r := range page.PreviewResults {
				require.Equal(t, types.ImageActionTypeExpire, r.Action.Type)
				require.Equal(t, int32(1), aws.ToInt32(r.AppliedRulePriority))
				require.Empty(t, r.ImageTags)
				listed[repo] = append(listed[repo], digest.Digest(aws.ToString(r.ImageDigest)))
			}
		}
		require.ElementsMatch(t, seeded[repo].untagged[:2], listed[repo], "%s: the two older untagged images, not the index's older children", repo)
		total += len(listed[repo])
	}
	d.stop(t)
	sizeBefore := blobBytes(t, data)

	// 2. A 2 s lifecycle interval; SIGKILL once the run has expired some
	// twenty images (each recorded in the audit log before it goes).
	args := []string{"--lifecycle-interval", "2s", "--short-schedules", "--gc-grace", "1s"}
	d2 := startScheduleDaemon(t, bin, data, args...)
	d2.waitLog(t, `lifecycle schedule: every repository's policy is applied.* interval=2s .*gcAfter=true`)
	d2.waitLog(t, `gc schedule: online garbage collection.* interval=24h0m0s .*grace=1s`)
	c2 := ecrClient(d2.addr, "")
	for _, repo := range repos[:5] {
		got, err := c2.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String(repo)})
		require.NoError(t, err, "previews survive a restart")
		require.Equal(t, types.LifecyclePolicyPreviewStatusComplete, got.Status)
		require.Len(t, got.PreviewResults, 2)
	}
	deadline := time.Now().Add(30 * time.Second)
	for auditCount(t, data, `"PolicyExecutionEvent"`) < 20 {
		require.True(t, time.Now().Before(deadline), "no image expired:\n%s", d2.logText())
		// Watching another process's audit log for the run to get going:
		// no clock of ours can tell when it writes.
		time.Sleep(time.Millisecond)
	}
	d2.kill()
	recordedBeforeKill := auditCount(t, data, `"PolicyExecutionEvent"`)

	// Nothing lost, and the run was cut short in the middle: each
	// repository done (exactly its preview's images gone) or untouched.
	done := 0
	func() {
		e, err := engine.Open(data, &engine.Options{Logger: enginetest.QuietLogger(), Clock: enginetest.NewClock(), LifecycleInterval: time.Hour})
		require.NoError(t, err)
		defer func() { require.NoError(t, e.Close()) }()
		require.True(t, e.Schedules()[0].Resume, "the kill cut the run short")
		for _, repo := range repos {
			imgs, err := e.Images(ctx, repo)
			require.NoError(t, err)
			now := map[digest.Digest]bool{}
			for _, img := range imgs {
				now[img.Digest] = true
			}
			want := maps.Clone(before[repo])
			if !now[listed[repo][0]] || !now[listed[repo][1]] {
				for _, x := range listed[repo] {
					delete(want, x)
				}
				done++
			}
			require.Equal(t, want, now, "%s after the kill", repo)
		}
	}()
	t.Logf("killed after %d of %d repositories", done, len(repos))
	require.Positive(t, done)
	require.Less(t, done, len(repos), "the kill landed before the run's end")
	t.Log("fsck after the kill: ", fsckClean(t, bin, data))

	// 3. The next start resumes the run: it finishes the work, then a
	// collection brings the bytes back.
	d3 := startScheduleDaemon(t, bin, data, args...)
	d3.waitLog(t, `lifecycle schedule: .*resumesCutShortRun=true`)
	d3.waitMetric(t, `berth_lifecycle_runs_total{result="ok"}`, 1, 60*time.Second)
	d3.waitMetric(t, `berth_gc_runs_total{result="ok"}`, 1, 60*time.Second)
	assert.Equal(t, strconv.Itoa(total-2*done), d3.metric(t, `berth_lifecycle_images_expired_total{rule="1"}`), "the resumed run expired the rest")
	assert.Empty(t, d3.metric(t, `berth_lifecycle_images_archived_total{rule="1"}`), "an expire rule archives nothing (the counter has a series per transition rule that acted)")
	freed, err := strconv.ParseFloat(d3.metric(t, "berth_gc_bytes_freed_total"), 64)
	require.NoError(t, err)
	c3 := ecrClient(d3.addr, "")
	for _, repo := range repos {
		want := maps.Clone(before[repo])
		for _, x := range listed[repo] {
			delete(want, x)
		}
		require.Equal(t, want, manifests(t, c3, repo), "%s: exactly what the preview listed is gone", repo)
	}
	// The kept index, children and all, and the tagged image pull.
	for _, repo := range repos[:3] {
		ref, err := name.ParseReference(d3.addr+"/"+repo+":release", name.Insecure)
		require.NoError(t, err)
		idx, err := remote.Index(ref)
		require.NoError(t, err)
		im, err := idx.IndexManifest()
		require.NoError(t, err)
		require.Len(t, im.Manifests, 2)
		for _, m := range im.Manifests {
			img, err := idx.Image(m.Digest)
			require.NoError(t, err)
			layers, err := img.Layers()
			require.NoError(t, err)
			for _, l := range layers {
				rc, err := l.Compressed()
				require.NoError(t, err)
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				require.NoError(t, err)
			}
		}
	}
	d3.stop(t)
	sizeAfter := blobBytes(t, data)
	t.Logf("store blob files: %d bytes before, %d after (%d freed, %v reported by the last collection)", sizeBefore, sizeAfter, sizeBefore-sizeAfter, freed)
	assert.Greater(t, sizeBefore-sizeAfter, int64(total*scheduleLayerSize), "every expired image's own layer is gone")
	t.Log("fsck at the end: ", fsckClean(t, bin, data))

	// The audit log: each image expired, once, recorded as the engine's
	// own change, naming the rule; the runs and the collection.
	e, err := engine.Open(data, &engine.Options{Logger: enginetest.QuietLogger()})
	require.NoError(t, err)
	defer func() { require.NoError(t, e.Close()) }()
	expired := map[digest.Digest]int{}
	records := 0
	require.NoError(t, e.AuditRecords(ctx, engine.AuditQuery{Action: engine.ActionPolicyExecution}, func(r engine.AuditRecord) error {
		assert.Equal(t, engine.AuditLocal, r.PrincipalType)
		assert.Equal(t, engine.AuditSystemUser, r.UserName)
		assert.Equal(t, engine.AuditAPIEngine, r.API)
		assert.Equal(t, "1", r.Parameters["rulePriority"])
		assert.Equal(t, "Keep only one untagged image, expire all others", r.Parameters["ruleDescription"])
		assert.Contains(t, listed[r.Repository], digest.Digest(r.Parameters["imageDigest"]))
		expired[digest.Digest(r.Parameters["imageDigest"])]++
		records++
		return nil
	}))
	require.Len(t, expired, total, "every image expired is recorded")
	// An image is recorded before it goes: the images of the repository
	// whose batch the kill cut off were recorded then, and again when the
	// resumed run expired them.
	assert.Equal(t, total+recordedBeforeKill-2*done, records)
	var phases []string
	require.NoError(t, e.AuditRecords(ctx, engine.AuditQuery{Action: engine.ActionApplyLifecycle, OldestFirst: true}, func(r engine.AuditRecord) error {
		phases = append(phases, r.Parameters["trigger"]+" "+r.Parameters["phase"])
		return nil
	}))
	assert.Equal(t, []string{"schedule start", "resume start", "resume end"}, phases[:3], "the run, cut short, resumed and finished")
	gcs := 0
	require.NoError(t, e.AuditRecords(ctx, engine.AuditQuery{Action: engine.ActionCollectGarbage}, func(r engine.AuditRecord) error {
		if r.Parameters["phase"] == "end" && r.Parameters["trigger"] == engine.TriggerLifecycle {
			gcs++
		}
		return nil
	}))
	assert.Equal(t, 1, gcs, "one collection, after the resumed run")
}
