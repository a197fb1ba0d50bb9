package e2e

// Image scanning end to end: a real registryd (in process, or a child
// process for the SIGKILL), images pushed by go-containerregistry, the
// vulnerability database imported with `registryd scan db import`, and
// the findings read through the AWS SDK for Go v2.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/internal/scanfixture"
	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/registryd/cli"
)

// scanDir is the scan package's directory (its testdata: fixture images
// and advisories).
var scanDir = filepath.Join("..", "..", "scan")

func osvDir(parts ...string) string {
	return filepath.Join(append([]string{scanDir, "testdata", "osv"}, parts...)...)
}

// fixtureImage builds fixture image name as a one-layer image (gzip);
// extra files (path -> content) are added to its layer.
func fixtureImage(t *testing.T, name string, extra map[string][]byte) v1.Image {
	t.Helper()
	dir := t.TempDir()
	if err := scanfixture.Build(scanDir, name, dir); err != nil {
		if errors.Is(err, scanfixture.ErrMissing) {
			testenv.Missing(t, "%v", err)
		}
		require.NoError(t, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.AddFS(os.DirFS(dir)))
	for p, body := range extra {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	require.NoError(t, err)
	img, err := mutate.AppendLayers(empty.Image, layer)
	require.NoError(t, err)
	return img
}

// pushAs pushes img to addr/repo:tag as the test's admin user.
func pushAs(t *testing.T, addr, repo, tag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(addr+"/"+repo+":"+tag, name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: "pw"})))
	d, err := img.Digest()
	require.NoError(t, err)
	return d.String()
}

// scanDB runs `registryd scan db ARGS --data DIR` and returns its exit
// code and output.
func scanDB(t *testing.T, data string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"scan", "db", args[0], "--data", data}, args[1:]...)
	code := cli.Main(context.Background(), cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, full)
	return code, out.String(), errb.String()
}

// waitScan waits until the image's scan is no longer IN_PROGRESS (as
// DescribeImages shows it) and returns its status.
func waitScan(t *testing.T, c *ecr.Client, repo, tag string) types.ImageDetail {
	t.Helper()
	var last types.ImageDetail
	require.Eventually(t, func() bool {
		out, err := c.DescribeImages(context.Background(), &ecr.DescribeImagesInput{
			RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}}})
		require.NoError(t, err)
		require.Len(t, out.ImageDetails, 1)
		last = out.ImageDetails[0]
		return last.ImageScanStatus != nil && last.ImageScanStatus.Status != types.ScanStatusInProgress
	}, 2*time.Minute, 20*time.Millisecond, "the scan of %s:%s ends", repo, tag)
	return last
}

// sdkFindings reads every finding of an image through the SDK's
// paginator (pages of pageSize), as "name ecosystem package version
// severity" lines, sorted, and the findingSeverityCounts.
func sdkFindings(t *testing.T, c *ecr.Client, repo, tag string, pageSize int32) ([]string, map[string]int32) {
	t.Helper()
	lines := []string{}
	var counts map[string]int32
	p := ecr.NewDescribeImageScanFindingsPaginator(c, &ecr.DescribeImageScanFindingsInput{
		RepositoryName: aws.String(repo), ImageId: &types.ImageIdentifier{ImageTag: aws.String(tag)}, MaxResults: aws.Int32(pageSize)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		require.NoError(t, err)
		require.Equal(t, types.ScanStatusComplete, out.ImageScanStatus.Status)
		require.NotNil(t, out.ImageScanFindings)
		require.LessOrEqual(t, len(out.ImageScanFindings.Findings), int(pageSize))
		counts = out.ImageScanFindings.FindingSeverityCounts
		require.NotNil(t, out.ImageScanFindings.ImageScanCompletedAt)
		for _, f := range out.ImageScanFindings.Findings {
			attrs := map[string]string{}
			for _, a := range f.Attributes {
				attrs[aws.ToString(a.Key)] = aws.ToString(a.Value)
			}
			require.NotEmpty(t, aws.ToString(f.Uri), "%s", aws.ToString(f.Name))
			lines = append(lines, strings.Join([]string{aws.ToString(f.Name), attrs["package_ecosystem"],
				attrs["package_name"], attrs["package_version"], string(f.Severity)}, " "))
			if score, ok := attrs["CVSS3_SCORE"]; ok {
				require.NotEmpty(t, score)
				require.True(t, strings.HasPrefix(attrs["CVSS3_VECTOR"], "CVSS:3."), "%v", attrs)
			}
		}
	}
	sort.Strings(lines)
	return lines, counts
}

// expected reads an image's findings.txt.
func expected(t *testing.T, image string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scanDir, "testdata", "images", image, "findings.txt"))
	require.NoError(t, err)
	out := []string{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// TestScanFixtureImages: every fixture image pushed to registryd under a
// registry rule that scans on push; the findings read through the AWS
// SDK are the hand-listed ones exactly (no false negative, no false
// positive), and the counts and DescribeImages' summary agree with them.
func TestScanFixtureImages(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	code, out, errOut := scanDB(t, data, "import", osvDir())
	require.Equal(t, 0, code, errOut)
	t.Log(strings.TrimSpace(out))
	auth := withECRAuth(t)
	addr := startServer(t, func(c *cli.Config) { auth(c); c.Data, c.CreateOnPush = data, true })
	c := ecrClient(addr, "")

	_, err := c.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{
		ScanType: types.ScanTypeBasic,
		Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyScanOnPush,
			RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("fixtures/*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}},
	})
	require.NoError(t, err)
	got, err := c.GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{})
	require.NoError(t, err)
	require.Equal(t, types.ScanTypeBasic, got.ScanningConfiguration.ScanType)
	require.Len(t, got.ScanningConfiguration.Rules, 1)

	for _, image := range scanfixture.Images {
		pushAs(t, addr, "fixtures/"+image, "v1", fixtureImage(t, image, nil))
	}
	for _, image := range scanfixture.Images {
		t.Run(image, func(t *testing.T) {
			repo := "fixtures/" + image
			det := waitScan(t, c, repo, "v1")
			require.Equal(t, types.ScanStatusComplete, det.ImageScanStatus.Status, aws.ToString(det.ImageScanStatus.Description))
			lines, counts := sdkFindings(t, c, repo, "v1", 2)
			require.Equal(t, expected(t, image), lines)
			total := int32(0)
			for _, n := range counts {
				total += n
			}
			require.Equal(t, int32(len(lines)), total)
			require.NotNil(t, det.ImageScanFindingsSummary)
			require.Equal(t, counts, det.ImageScanFindingsSummary.FindingSeverityCounts)
			require.NotNil(t, det.ImageScanFindingsSummary.VulnerabilitySourceUpdatedAt)
		})
	}

	rs, err := c.BatchGetRepositoryScanningConfiguration(ctx, &ecr.BatchGetRepositoryScanningConfigurationInput{
		RepositoryNames: []string{"fixtures/debian", "absent"}})
	require.NoError(t, err)
	require.Len(t, rs.ScanningConfigurations, 1)
	require.Equal(t, types.ScanFrequencyScanOnPush, rs.ScanningConfigurations[0].ScanFrequency)
	require.Equal(t, "fixtures/*", aws.ToString(rs.ScanningConfigurations[0].AppliedScanFilters[0].Filter))
	require.Len(t, rs.Failures, 1)
	require.Equal(t, types.ScanningConfigurationFailureCodeRepositoryNotFound, rs.Failures[0].FailureCode)

	// What Berth cannot act on is refused.
	_, err = c.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{
		ScanType: types.ScanTypeBasic,
		Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyContinuousScan,
			RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}},
	})
	requireAPIError(t, err, "InvalidParameterException")
}

// TestScanManualAndLimit: an image of a repository without scanOnPush is
// not scanned until StartImageScan; a second manual scan within 24 hours
// is refused (LimitExceededException); PutImageScanningConfiguration's
// scanOnPush is acted on at the next push; an index is not scannable.
func TestScanManualAndLimit(t *testing.T) {
	ctx := context.Background()
	auth := withECRAuth(t)
	addr := startServer(t, func(c *cli.Config) { auth(c); c.CreateOnPush = true })
	c := ecrClient(addr, "")
	pushAs(t, addr, "manual", "v1", fixtureImage(t, "debian", nil))
	id := &types.ImageIdentifier{ImageTag: aws.String("v1")}
	_, err := c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("manual"), ImageId: id})
	requireAPIError(t, err, "ScanNotFoundException")
	det, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("manual")})
	require.NoError(t, err)
	require.Nil(t, det.ImageDetails[0].ImageScanStatus)

	started, err := c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String("manual"), ImageId: id})
	require.NoError(t, err)
	require.Equal(t, types.ScanStatusInProgress, started.ImageScanStatus.Status)
	require.NotEmpty(t, aws.ToString(started.ImageId.ImageDigest))
	require.Equal(t, types.ScanStatusComplete, waitScan(t, c, "manual", "v1").ImageScanStatus.Status)
	lines, _ := sdkFindings(t, c, "manual", "v1", 100)
	require.Empty(t, lines, "no vulnerability database: nothing matches")

	_, err = c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String("manual"), ImageId: id})
	requireAPIError(t, err, "LimitExceededException")
	_, err = c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String("manual"), ImageId: &types.ImageIdentifier{ImageTag: aws.String("nope")}})
	requireAPIError(t, err, "ImageNotFoundException")

	_, err = c.PutImageScanningConfiguration(ctx, &ecr.PutImageScanningConfigurationInput{RepositoryName: aws.String("manual"),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}})
	require.NoError(t, err)
	pushAs(t, addr, "manual", "v2", fixtureImage(t, "alpine", nil))
	require.Equal(t, types.ScanStatusComplete, waitScan(t, c, "manual", "v2").ImageScanStatus.Status)
	rs, err := c.BatchGetRepositoryScanningConfiguration(ctx, &ecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: []string{"manual"}})
	require.NoError(t, err)
	require.True(t, rs.ScanningConfigurations[0].ScanOnPush)
	require.Equal(t, types.ScanFrequencyScanOnPush, rs.ScanningConfigurations[0].ScanFrequency)
}

// TestScanContinuousRematch: under an ENHANCED CONTINUOUS_SCAN rule, an
// image scanned against a database without its advisories has no
// findings; a corrupt export is refused by `registryd scan db import`
// with a clear error and the database in use still serves; an import
// with the advisories re-matches the stored inventory when the daemon
// runs again, and the findings appear; a rollback re-matches back.
func TestScanContinuousRematch(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	code, _, errOut := scanDB(t, data, "import", osvDir("ghsa"))
	require.Equal(t, 0, code, errOut)
	auth := withECRAuth(t)
	serve := func() (*ecr.Client, string, func()) {
		addr, stop := startStoppableServer(t, func(c *cli.Config) { auth(c); c.Data, c.CreateOnPush = data, true })
		return ecrClient(addr, ""), addr, stop
	}
	c, addr, stop := serve()
	_, err := c.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{
		ScanType: types.ScanTypeEnhanced,
		Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyContinuousScan,
			RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("cont*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}},
	})
	require.NoError(t, err)
	pushAs(t, addr, "continuous", "v1", fixtureImage(t, "debian", nil))
	require.Equal(t, types.ScanStatusComplete, waitScan(t, c, "continuous", "v1").ImageScanStatus.Status)
	lines, _ := sdkFindings(t, c, "continuous", "v1", 10)
	require.Empty(t, lines)
	stop()

	bad := filepath.Join(t.TempDir(), "Debian", "all.zip")
	require.NoError(t, os.MkdirAll(filepath.Dir(bad), 0o755))
	require.NoError(t, os.WriteFile(bad, []byte("PK\x03\x04 a truncated zip"), 0o644))
	code, _, errOut = scanDB(t, data, "import", bad)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "vulnerability data refused")
	require.Contains(t, errOut, "all.zip")
	code, out, errOut := scanDB(t, data, "status")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "current: version 1, ")
	require.Contains(t, out, "9 records")

	code, out, errOut = scanDB(t, data, "import", osvDir())
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "imported version 2")
	require.Contains(t, out, "1 images queued for a re-match")

	c, _, stop = serve()
	require.Eventually(t, func() bool {
		lines, _ := sdkFindings(t, c, "continuous", "v1", 10)
		return len(lines) > 0
	}, 2*time.Minute, 20*time.Millisecond, "the re-match finds the new advisories")
	lines, counts := sdkFindings(t, c, "continuous", "v1", 10)
	require.Equal(t, expected(t, "debian"), lines)
	require.Equal(t, map[string]int32{"UNDEFINED": 2}, counts)
	stop()

	code, out, errOut = scanDB(t, data, "rollback")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "rolled back to version 1")
	c, _, _ = serve()
	require.Eventually(t, func() bool {
		lines, _ := sdkFindings(t, c, "continuous", "v1", 10)
		return len(lines) == 0
	}, 2*time.Minute, 20*time.Millisecond, "the rollback re-matches back")
}

// TestScanSIGKILL: a registryd child process is SIGKILLed right after it
// acknowledged a push to a repository with scanOnPush, while the scan of
// the image (a layer of 48 MiB, gzip: its seekable copy is being made)
// runs; started again, it completes the scan from its queue with the
// fixture's findings.
func TestScanSIGKILL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildRegistryd(t)
	data := filepath.Join(dir, "store")
	code, _, errOut := scanDB(t, data, "import", osvDir("transcribed"))
	require.Equal(t, 0, code, errOut)
	auth := withECRAuth(t)
	var cfg cli.Config
	auth(&cfg)
	args := []string{"--htpasswd", cfg.Htpasswd, "--ecr-credentials", cfg.ECRCredentials}

	d := startDaemon(t, bin, data, args...)
	c := ecrClient(d.addr, "")
	_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("killed"),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}})
	require.NoError(t, err)
	big := make([]byte, 48<<20)
	_, _ = rand.Read(big)
	pushAs(t, d.addr, "killed", "v1", fixtureImage(t, "debian", map[string][]byte{"opt/big.bin": big}))
	d.kill()

	// The kill came while the scan ran: it is IN_PROGRESS, its job queued.
	e, err := engine.Open(data, &engine.Options{ScanWorkers: -1})
	require.NoError(t, err)
	s, err := e.ImageScan(ctx, "killed", "v1", false)
	require.NoError(t, err)
	require.Equal(t, engine.ScanInProgress, s.Status)
	n, err := e.ScanQueue(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, e.Close())

	d = startDaemon(t, bin, data, args...)
	c = ecrClient(d.addr, "")
	det := waitScan(t, c, "killed", "v1")
	require.Equal(t, types.ScanStatusComplete, det.ImageScanStatus.Status, aws.ToString(det.ImageScanStatus.Description))
	lines, _ := sdkFindings(t, c, "killed", "v1", 100)
	require.Equal(t, expected(t, "debian"), lines)
	d.kill()
}

// TestScanDBLive: `registryd scan db --server` imports into a running
// daemon through its admin API (berth:ImportVulnerabilities), whose
// continuous rule re-matches at once; status and rollback likewise; a
// corrupt file is refused with the database in use still serving.
func TestScanDBLive(t *testing.T) {
	ctx := context.Background()
	auth := withECRAuth(t)
	addr := startServer(t, func(c *cli.Config) { auth(c); c.CreateOnPush = true })
	c := ecrClient(addr, "")
	t.Setenv("BERTH_PASSWORD", "pw")
	remote := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		full := append([]string{"scan", "db", args[0], "--server", "http://" + addr, "--server-user", "admin"}, args[1:]...)
		code := cli.Main(ctx, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, full)
		return code, out.String(), errb.String()
	}
	_, err := c.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{
		ScanType: types.ScanTypeEnhanced,
		Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyContinuousScan,
			RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}},
	})
	require.NoError(t, err)
	pushAs(t, addr, "live", "v1", fixtureImage(t, "alpine", nil))
	require.Equal(t, types.ScanStatusComplete, waitScan(t, c, "live", "v1").ImageScanStatus.Status)

	abs, err := filepath.Abs(osvDir("transcribed"))
	require.NoError(t, err)
	code, out, errOut := remote("import", abs)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "imported version 1")
	require.Eventually(t, func() bool {
		lines, _ := sdkFindings(t, c, "live", "v1", 10)
		return len(lines) > 0
	}, 2*time.Minute, 20*time.Millisecond)
	lines, _ := sdkFindings(t, c, "live", "v1", 10)
	require.Equal(t, expected(t, "alpine"), lines)

	bad := filepath.Join(t.TempDir(), "Alpine.zip")
	require.NoError(t, os.WriteFile(bad, []byte("garbage"), 0o644))
	code, _, errOut = remote("import", bad)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "vulnerability data refused")
	code, out, errOut = remote("status")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "current: version 1,")
	code, _, errOut = remote("rollback")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no previous version")

	// Without credentials: refused.
	var out2, errb bytes.Buffer
	code = cli.Main(ctx, cli.Env{Stdin: strings.NewReader(""), Stdout: &out2, Stderr: &errb}, []string{"scan", "db", "status", "--server", "http://" + addr})
	require.Equal(t, 1, code)
	require.Contains(t, errb.String(), "401")
}
