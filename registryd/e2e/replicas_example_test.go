package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/registryd/cli"
)

// threeReplicasExample is the example configuration's directory.
const threeReplicasExample = "../../docs/examples/three-replicas"

// TestThreeReplicasExampleConfig: the example replica configuration is
// one registryd accepts (and says what the example says it does).
func TestThreeReplicasExampleConfig(t *testing.T) {
	cfg := cli.DefaultConfig()
	require.NoError(t, cli.LoadConfigFile(filepath.Join(threeReplicasExample, "replica.yaml"), &cfg))
	cfg.Data = t.TempDir()
	require.NoError(t, cfg.Validate())
	opts, err := cfg.EngineOptions()
	require.NoError(t, err)
	require.NotNil(t, opts.ObjectStore)
	assert.Equal(t, "registry", opts.ObjectStore.Bucket)
	assert.True(t, opts.ObjectStore.TLS)
	assert.True(t, strings.HasPrefix(opts.Metadata, "postgres://"), opts.Metadata)
}

// TestThreeReplicasScript runs docs/examples/three-replicas/run-local.sh
// (MinIO, PostgreSQL and three registryd on 127.0.0.1): an image pushed
// to the first replica is listed by the second and pulls bit-exact from
// the third, and an interrupt stops everything the script started.
func TestThreeReplicasScript(t *testing.T) {
	needReplicaPrereqs(t)
	testenv.NeedTool(t, "aws")
	crane := testenv.NeedTool(t, "crane")
	bin := buildRegistryd(t)
	ports := make([]string, 5)
	for i := range ports {
		_, ports[i], _ = net.SplitHostPort(freePort(t))
	}
	// MinIO's console takes the port after its S3 port: keep both free.
	minioPort := freeAdjacentPorts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(threeReplicasExample, "run-local.sh"))
	cmd.Env = append(os.Environ(), "REGISTRYD="+bin, "REPLICA_PORTS="+strings.Join(ports[:3], " "),
		"MINIO_PORT="+minioPort, "PG_PORT="+ports[3])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	var out []string
	waitFor := func(prefix string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "run-local.sh ended before %q:\n%s\n%s", prefix, strings.Join(out, "\n"), stderr.String())
				out = append(out, l)
				if strings.HasPrefix(l, prefix) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q from run-local.sh:\n%s\n%s", prefix, strings.Join(out, "\n"), stderr.String())
			}
		}
	}
	waitFor("run-local.sh: ready:")
	addrs := make([]string, 3)
	for i := range addrs {
		addrs[i] = "127.0.0.1:" + ports[i]
	}

	img, err := random.Image(1<<20, 2)
	require.NoError(t, err)
	ref, err := name.ParseReference(addrs[0]+"/app/web:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	want, err := img.Digest()
	require.NoError(t, err)
	assert.Equal(t, "v1\n", runTool(t, crane, "ls", "--insecure", addrs[1]+"/app/web"))
	got := runTool(t, crane, "digest", "--insecure", addrs[2]+"/app/web:v1")
	assert.Equal(t, want.String(), strings.TrimSpace(got))
	pulled, err := remote.Image(mustRef(t, addrs[2]+"/app/web:v1"))
	require.NoError(t, err)
	requireSameLayers(t, img, pulled)

	// An interrupt stops the replicas, MinIO and PostgreSQL.
	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGINT))
	for l := range lines {
		out = append(out, l)
	}
	select {
	case err := <-exited:
		require.NoError(t, err, "%s\n%s", strings.Join(out, "\n"), stderr.String())
	case <-ctx.Done():
		t.Fatal("run-local.sh did not stop")
	}
	assert.Equal(t, "run-local.sh: stopped", out[len(out)-1])
	for _, p := range append(ports[:4:4], minioPort) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second)
		if err == nil {
			c.Close()
		}
		assert.Error(t, err, "port %s still answers after the script stopped", p)
	}
}

// freeAdjacentPorts returns a port p on 127.0.0.1 such that p and p+1
// are free at the time of the call.
func freeAdjacentPorts(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return fmt.Sprint(p)
		}
	}
	t.Fatal("no two adjacent free ports")
	return ""
}
