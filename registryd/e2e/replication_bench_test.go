package e2e

// Replication's figures: the lag under a steady push load of small
// images, and the throughput of replicating a 1 GiB repository against
// `crane copy` of it between the same two servers. Run once each:
//
//	go test -run '^$' -bench 'Replication(Lag|Throughput)' -benchtime 1x ./registryd/e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	gcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/registryd/cli"
)

// openDestination starts an open registry (no authentication) at addr
// over data, in the destination's account and region; stop stops it.
func openDestination(b *testing.B, addr, data string) func() {
	_, stop := startStoppableServer(b, func(c *cli.Config) {
		c.Addr, c.Data = addr, data
		c.ECRAccountID, c.ECRRegion = replSrcAccount, replRegion2
	})
	return stop
}

// openSource starts an open registry replicating to destAddr.
func openSource(b *testing.B, destAddr string) string {
	return startServer(b, func(c *cli.Config) {
		c.ECRAccountID, c.ECRRegion = replSrcAccount, replSrcRegion
		c.Replication = cli.Replication{
			InitialBackoff: cli.Duration(10 * time.Millisecond), MaxBackoff: cli.Duration(100 * time.Millisecond),
			Destinations: []cli.ReplicationEndpoint{{Region: replRegion2, RegistryID: replSrcAccount, URL: "http://" + destAddr, Concurrency: 4}},
		}
	})
}

func openECR(addr string) *ecr.Client {
	return ecr.New(ecr.Options{Region: replSrcRegion, BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAOPEN", "open", "")})
}

// replicateAll puts src's replication configuration: prefix to the
// destination.
func replicateAll(b *testing.B, src string, prefix string) {
	_, err := openECR(src).PutReplicationConfiguration(context.Background(), &ecr.PutReplicationConfigurationInput{
		ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{{
			Destinations:      []types.ReplicationDestination{{Region: aws.String(replRegion2), RegistryId: aws.String(replSrcAccount)}},
			RepositoryFilters: []types.RepositoryFilter{{Filter: aws.String(prefix), FilterType: types.RepositoryFilterTypePrefixMatch}},
		}}}})
	require.NoError(b, err)
}

// quantile is the q-quantile of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// BenchmarkReplicationLag: 10 pushes a second of a small image (one
// 4 KiB layer) for 20 s into a source replicating to a destination on
// 127.0.0.1; each push's lag is from its acknowledgement to the first
// HEAD of its tag that the destination answers 200 (polled every 5 ms).
func BenchmarkReplicationLag(b *testing.B) {
	for range b.N {
		destAddr := freePort(b)
		openDestination(b, destAddr, b.TempDir())
		src := openSource(b, destAddr)
		replicateAll(b, src, "lag/")
		const pushes, rate = 200, 10
		var mu sync.Mutex
		var lags []time.Duration
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		for i := range pushes {
			<-tick.C
			img, err := random.Image(4096, 1)
			require.NoError(b, err)
			tag := fmt.Sprintf("t%03d", i)
			r, err := name.ParseReference(src+"/lag/app:"+tag, name.Insecure)
			require.NoError(b, err)
			require.NoError(b, remote.Write(r, img))
			acked := time.Now()
			d, _ := img.Digest()
			wg.Add(1)
			go func() {
				defer wg.Done()
				url := "http://" + destAddr + "/v2/lag/app/manifests/" + tag
				for time.Since(acked) < 30*time.Second {
					req, _ := http.NewRequest(http.MethodHead, url, nil)
					req.Header.Set("Accept", string(gcrtypes.DockerManifestSchema2))
					resp, err := http.DefaultClient.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK && resp.Header.Get("Docker-Content-Digest") == d.String() {
							mu.Lock()
							lags = append(lags, time.Since(acked))
							mu.Unlock()
							return
						}
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		tick.Stop()
		wg.Wait()
		require.Len(b, lags, pushes, "every push replicated within 30 s")
		slices.Sort(lags)
		b.ReportMetric(float64(quantile(lags, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(quantile(lags, 0.99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-ms")
		b.Logf("lag of %d pushes at %d/s: p50 %v p90 %v p99 %v max %v", pushes, rate, quantile(lags, 0.5), quantile(lags, 0.9), quantile(lags, 0.99), lags[len(lags)-1])
	}
}

// BenchmarkReplicationThroughput: a repository of 16 images of one
// 64 MiB incompressible layer each (1 GiB) in the source, copied to an
// empty destination by `crane copy --all-tags` and by replication,
// alternately, three times each, the destination's store fresh for each copy
// (the same address and settings). Replication is timed from the
// manifests' puts (which queue its jobs) to the last image COMPLETE.
func BenchmarkReplicationThroughput(b *testing.B) {
	crane := testenv.NeedTool(b, "crane")
	const images, layerMiB = 16, 64
	for range b.N {
		destAddr := freePort(b)
		stop := openDestination(b, destAddr, b.TempDir())
		src := openSource(b, destAddr)
		type pushed struct {
			tag       string
			manifest  []byte
			mediaType string
		}
		var all []pushed
		layer := make([]byte, layerMiB<<20)
		for i := range images {
			_, err := rand.Read(layer)
			require.NoError(b, err)
			img, err := mutate.AppendLayers(empty.Image, static.NewLayer(bytes.Clone(layer), gcrtypes.DockerLayer))
			require.NoError(b, err)
			tag := "v" + strconv.Itoa(i)
			r, err := name.ParseReference(src+"/big/repo:"+tag, name.Insecure)
			require.NoError(b, err)
			require.NoError(b, remote.Write(r, img))
			raw, err := img.RawManifest()
			require.NoError(b, err)
			mt, err := img.MediaType()
			require.NoError(b, err)
			all = append(all, pushed{tag, raw, string(mt)})
		}
		replicateAll(b, src, "big/")
		fresh := func() {
			stop()
			stop = openDestination(b, destAddr, b.TempDir())
		}
		var craneTimes, replTimes []time.Duration
		for round := range 3 {
			start := time.Now()
			cmd := exec.Command(crane, "copy", "--all-tags", "--insecure", src+"/big/repo", destAddr+"/big/repo")
			cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+b.TempDir())
			out, err := cmd.CombinedOutput()
			require.NoError(b, err, "%s", out)
			craneTimes = append(craneTimes, time.Since(start))
			fresh()

			// Replication: the manifests put again (each queues its jobs),
			// then wait for every tag at the destination.
			start = time.Now()
			for _, p := range all {
				req, err := http.NewRequest(http.MethodPut, "http://"+src+"/v2/big/repo/manifests/"+p.tag, bytes.NewReader(p.manifest))
				require.NoError(b, err)
				req.Header.Set("Content-Type", p.mediaType)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(b, err)
				resp.Body.Close()
				require.Equal(b, http.StatusCreated, resp.StatusCode)
			}
			putsDone := time.Since(start)
			for _, p := range all {
				for {
					resp, err := http.Head("http://" + destAddr + "/v2/big/repo/manifests/" + p.tag)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							break
						}
					}
					require.Less(b, time.Since(start), 10*time.Minute)
					time.Sleep(10 * time.Millisecond)
				}
			}
			replTimes = append(replTimes, time.Since(start))
			b.Logf("round %d: the 16 manifest puts (which queue the jobs) took %v of the replication's %v", round+1,
				putsDone.Round(time.Millisecond), replTimes[round].Round(time.Millisecond))
			if round < 2 {
				fresh()
			}
		}
		mib := float64(images * layerMiB)
		for i := range craneTimes {
			b.Logf("round %d: crane copy %v (%.0f MiB/s), replication %v (%.0f MiB/s), replication/crane throughput x%.2f", i+1,
				craneTimes[i].Round(time.Millisecond), mib/craneTimes[i].Seconds(), replTimes[i].Round(time.Millisecond), mib/replTimes[i].Seconds(),
				craneTimes[i].Seconds()/replTimes[i].Seconds())
		}
		b.ReportMetric(mib/slices.Min(replTimes).Seconds(), "repl-MiB/s")
		b.ReportMetric(mib/slices.Min(craneTimes).Seconds(), "crane-MiB/s")
	}
}
