package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	gcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/cli"
)

// pullTiming is what one pull measured: the time to the first byte of
// the image's layer (from the start of the pull: the client's version
// check, the manifest, the layer's request) and to its last.
type pullTiming struct {
	firstByte, whole time.Duration
}

// timePull pulls ref with a client of its own (cold connections): the
// manifest, then the layer, read to its end (verified by the client).
func timePull(b *testing.B, ref string, auth authn.Authenticator) pullTiming {
	b.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	require.NoError(b, err)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	start := time.Now()
	img, err := remote.Image(r, remote.WithAuth(auth), remote.WithTransport(tr))
	require.NoError(b, err)
	layers, err := img.Layers()
	require.NoError(b, err)
	rc, err := layers[0].Compressed()
	require.NoError(b, err)
	defer rc.Close()
	one := make([]byte, 1)
	_, err = io.ReadFull(rc, one)
	require.NoError(b, err)
	t := pullTiming{firstByte: time.Since(start)}
	_, err = io.Copy(io.Discard, rc)
	require.NoError(b, err, "the layer's digest checks")
	t.whole = time.Since(start)
	return t
}

// BenchmarkPullThroughCacheTTFB measures a cold pull of an image of one
// BERTH_BENCH_MIB-MiB layer (default 200, incompressible) through the
// pull-through cache against a direct pull from its upstream: a private
// registryd (htpasswd) on 127.0.0.1, the cache authenticating with a
// stored secret. Reported per run: the time to the layer's first byte
// and to its last, both ways, their ratio, the cold time to first byte
// as a share of the whole direct pull, and the time until the
// cache holds the whole image (what a first pull waited for when the
// cache copied the image before answering); medians of
// BERTH_BENCH_SAMPLES samples (default 5). Two layouts: "processes",
// the upstream and each cache a registryd process of its own, as they
// run in earnest (the client is the benchmark's process); and
// "one-process", the three in the benchmark's process, where the
// upstream's work is scheduled by the same Go runtime as the cache's and
// the client's. Run it once:
//
//	go test -run '^$' -bench PullThroughCacheTTFB -benchtime 1x ./registryd/e2e
func BenchmarkPullThroughCacheTTFB(b *testing.B) {
	b.Run("processes", func(b *testing.B) { benchPullThroughCacheTTFB(b, true) })
	b.Run("one-process", func(b *testing.B) { benchPullThroughCacheTTFB(b, false) })
}

func benchPullThroughCacheTTFB(b *testing.B, processes bool) {
	mib := 200
	if v, err := strconv.Atoi(os.Getenv("BERTH_BENCH_MIB")); err == nil && v > 0 {
		mib = v
	}
	ctx := context.Background()
	files := b.TempDir()
	htpasswd := htpasswdFile(b, files, "upstream-bot", upstreamPassword)
	var bin string
	// startRegistry starts a registryd with args (a process of its own,
	// or in this one) and returns its address and how to stop it.
	startRegistry := func(args ...string) (string, func()) {
		if processes {
			d := startDaemon(b, bin, b.TempDir(), args...)
			return d.addr, d.kill
		}
		return startStoppableServer(b, func(c *cli.Config) {
			if len(args) == 2 {
				c.Htpasswd = args[1]
			}
		})
	}
	if processes {
		bin = buildRegistryd(b)
	}
	upstream, _ := startRegistry("--htpasswd", htpasswd)
	upAuth := &authn.Basic{Username: "upstream-bot", Password: upstreamPassword}
	data := make([]byte, mib<<20)
	_, err := rand.Read(data)
	require.NoError(b, err)
	layer := static.NewLayer(data, gcrtypes.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, layer)
	require.NoError(b, err)
	img = mutate.MediaType(img, gcrtypes.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, gcrtypes.OCIConfigJSON)
	ref, err := name.ParseReference(upstream+"/library/big:v1", name.Insecure)
	require.NoError(b, err)
	require.NoError(b, remote.Write(ref, img, remote.WithAuth(upAuth)))
	want, err := img.Digest()
	require.NoError(b, err)
	data = nil

	samples := 5
	if v, err := strconv.Atoi(os.Getenv("BERTH_BENCH_SAMPLES")); err == nil && v > 0 {
		samples = v
	}
	timePull(b, upstream+"/library/big:v1", upAuth) // warms the upstream up: not counted
	for b.Loop() {
		var direct, cold, warm []pullTiming
		var filled []time.Duration
		for k := 0; k < samples; k++ {
			direct = append(direct, timePull(b, upstream+"/library/big:v1", upAuth))
			cache, stopCache := startRegistry() // a fresh, empty cache, open: each sample is a cold pull
			var out bytes.Buffer
			code := cli.Main(ctx, cli.Env{Stdin: strings.NewReader(`{"username":"upstream-bot","accessToken":"` + upstreamPassword + `"}`),
				Stdout: &out, Stderr: &out}, []string{"secrets", "put", "--server", "http://" + cache, "ecr-pullthroughcache/big"})
			require.Equal(b, 0, code, out.String())
			c := ecrClient(cache, "any")
			_, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub"),
				UpstreamRegistryUrl: aws.String("http://" + upstream),
				CredentialArn:       aws.String("arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/big")})
			require.NoError(b, err)
			start := time.Now()
			cold = append(cold, timePull(b, cache+"/hub/library/big:v1", authn.Anonymous))
			var f time.Duration
			for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) { // polls the cache's own answer: no clock serves here
				imgs, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("hub/library/big"),
					ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
				if err == nil && len(imgs.ImageDetails) == 1 && aws.ToString(imgs.ImageDetails[0].ImageDigest) == want.String() {
					f = time.Since(start)
					break
				}
			}
			require.NotZero(b, f, "the cache holds the image")
			filled = append(filled, f)
			warm = append(warm, timePull(b, cache+"/hub/library/big:v1", authn.Anonymous))
			stopCache()
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		median := func(ts []pullTiming, first bool) time.Duration {
			ds := make([]time.Duration, len(ts))
			for i, t := range ts {
				ds[i] = t.whole
				if first {
					ds[i] = t.firstByte
				}
			}
			slices.Sort(ds)
			return ds[len(ds)/2]
		}
		slices.Sort(filled)
		b.ReportMetric(ms(median(direct, true)), "direct-ttfb-ms")
		b.ReportMetric(ms(median(cold, true)), "cold-ttfb-ms")
		b.ReportMetric(ms(median(warm, true)), "warm-ttfb-ms")
		b.ReportMetric(ms(median(cold, true))/ms(median(direct, true)), "ttfb-ratio")
		b.ReportMetric(100*ms(median(cold, true))/ms(median(direct, false)), "cold-ttfb-%-of-direct-pull")
		b.ReportMetric(ms(median(direct, false)), "direct-pull-ms")
		b.ReportMetric(ms(median(cold, false)), "cold-pull-ms")
		b.ReportMetric(ms(median(warm, false)), "warm-pull-ms")
		b.ReportMetric(ms(filled[len(filled)/2]), "cache-filled-ms")
		for k := range samples {
			b.Logf("sample %d, %d MiB layer: TTFB direct %v, cold through the cache %v, warm %v; whole pull direct %v, cold %v, warm %v; image stored in the cache %v after the pull began",
				k+1, mib, direct[k].firstByte, cold[k].firstByte, warm[k].firstByte, direct[k].whole, cold[k].whole, warm[k].whole, filled[k])
		}
	}
}
