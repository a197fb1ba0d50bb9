package e2e

// The source registryd SIGKILLed mid-replication, again and again.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
)

// manifestPuts counts the manifest PUTs and upload starts the registry at
// addr answered 201/202, from its metrics.
func manifestPuts(t *testing.T, addr string) (puts, uploads int) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "berth_http_requests_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		require.NoError(t, err)
		switch {
		case strings.Contains(line, `route="manifest"`) && strings.Contains(line, `method="PUT"`) && strings.Contains(line, `code="201"`):
			puts += int(v)
		case strings.Contains(line, `route="upload"`) && strings.Contains(line, `method="POST"`) && strings.Contains(line, `code="202"`):
			uploads += int(v)
		}
	}
	return puts, uploads
}

// TestReplicationSourceSIGKILL: a real registryd source, pushed to by
// two clients, SIGKILLed at a random moment 20 times while it replicates
// to two destinations; then started once more. Every acknowledged push
// is at every destination (by digest), and each tag is at its source's
// last push (tag by tag); the manifest PUTs the destinations received
// are counted against the images and tags they had to get.
func TestReplicationSourceSIGKILL(t *testing.T) {
	dir := t.TempDir()
	bin := buildRegistryd(t)

	f := newReplFixture(t, nil)
	// The source: a child process with the fixture's destinations.
	cfgFile := filepath.Join(dir, "source.json")
	creds := filepath.Join(dir, "ecr-credentials")
	require.NoError(t, os.WriteFile(creds, []byte(replAdminKey+":"+replAdminSecret+":admin\n"), 0o600))
	cfg := map[string]any{
		"ecrAccountId": replSrcAccount, "ecrRegion": replSrcRegion,
		"htpasswd": htpasswdFile(t, dir, "admin", "pw-admin"), "ecrCredentials": creds,
		"replication": map[string]any{
			"initialBackoff": "20ms", "maxBackoff": "200ms",
			"destinations": []map[string]any{
				{"region": replRegion2, "registryId": replSrcAccount, "url": "http://" + f.region.addr, "username": "replicator", "password": "pw-replicator"},
				{"region": replAcct2Region, "registryId": replAcct2, "url": "http://" + f.acct.addr, "username": "replicator", "password": "pw-replicator"},
			},
		},
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgFile, b, 0o600))
	data := filepath.Join(dir, "store")

	type push struct{ repo, tag, digest string }
	var (
		mu    sync.Mutex
		acked []push
	)
	repos := []string{"race/k0", "race/k1"}
	start := time.Now()
	for kill := 0; kill <= 20; kill++ {
		d := startDaemon(t, bin, data, "--config", cfgFile)
		f.src = &replRegistry{addr: d.addr, account: replSrcAccount, region: replSrcRegion}
		if kill == 0 {
			f.configure(t)
		}
		if kill == 20 {
			break // the last start: it replicates what is left
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, repo := range repos {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					tag := fmt.Sprintf("t%d", (kill*7+i)%6)
					img := randomSmall(t)
					r, err := name.ParseReference(d.addr+"/"+repo+":"+tag, name.Insecure)
					require.NoError(t, err)
					if remote.Write(r, img, replAuth("admin"), remote.WithContext(ctx)) != nil {
						return // killed under it: not acknowledged
					}
					dg, _ := img.Digest()
					mu.Lock()
					acked = append(acked, push{repo, tag, dg.String()})
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(150+rand.IntN(250)) * time.Millisecond)
		d.kill()
		cancel()
		wg.Wait()
	}
	// Every tag at the source's last push, at each destination, tag by
	// tag; every acknowledged push there by digest.
	last := map[string]map[string]string{}
	for _, repo := range repos {
		last[repo] = map[string]string{}
		for i := range 6 {
			tag := fmt.Sprintf("t%d", i)
			if d := tagAt(t, f.src.addr, repo, tag); d != "" {
				last[repo][tag] = d
			}
		}
	}
	for _, dst := range []string{f.region.addr, f.acct.addr} {
		for _, repo := range repos {
			waitTags(t, dst, repo, last[repo], 60*time.Second)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, acked)
	lastAcked := map[string]string{}
	for _, p := range acked {
		lastAcked[p.repo+":"+p.tag] = p.digest
		for _, dst := range []string{f.region.addr, f.acct.addr} {
			r, err := name.ParseReference(dst+"/"+p.repo+"@"+p.digest, name.Insecure)
			require.NoError(t, err)
			_, err = remote.Head(r, replAuth("admin"))
			require.NoError(t, err, "acknowledged push %s:%s %s at %s", p.repo, p.tag, p.digest, dst)
		}
	}
	for k, d := range lastAcked {
		repo, tag, _ := strings.Cut(k, ":")
		if last[repo][tag] != d {
			t.Logf("%s: the source's tag is at %s, a push after the last acknowledged one (%s) that the kill cut before its answer", k, last[repo][tag], d)
		}
	}
	puts, uploads := manifestPuts(t, f.region.addr)
	t.Logf("20 SIGKILLs in %v: %d acknowledged pushes (%d images, each a manifest and two blobs); cross-region destination answered %d manifest PUTs (201) and %d upload starts (202)",
		time.Since(start).Round(time.Millisecond), len(acked), len(acked), puts, uploads)
}

func randomSmall(t *testing.T) v1.Image {
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	return img
}
