package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/internal/testenv"
)

// TestConformanceThreeReplicas runs the OCI distribution-spec conformance
// suite, every option on (as registryd/conformance.sh runs it: push,
// pull, content discovery, content management, sha256 and sha512,
// sparse manifests), against three registryd over one MinIO and one
// PostgreSQL, each request sent to the next replica in turn by the
// proxy: once without authentication and once with basic authentication.
// Every test must pass: none failed, none skipped.
func TestConformanceThreeReplicas(t *testing.T) {
	tool := testenv.NeedTool(t, "conformance")
	needReplicaPrereqs(t)
	noauth := startReplicaSet(t, replicaSetOptions{Prefix: "noauth", Args: []string{"--allow-sparse"}})

	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte("conformance-pw"), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(htpasswd, []byte("conformance:"+string(h)+"\n"), 0o600))
	auth := startReplicaSet(t, replicaSetOptions{Prefix: "auth", MinIO: noauth.MinIO, PG: noauth.PG, Bin: noauth.Bin,
		Args: []string{"--allow-sparse", "--htpasswd", htpasswd}})

	for _, run := range []struct {
		name, user, pass string
		set              *replicaSet
	}{
		{"noauth", "", "", noauth},
		{"auth", "conformance", "conformance-pw", auth},
	} {
		t.Run(run.name, func(t *testing.T) {
			if run.user != "" {
				status, _, _ := httpDo(t, "GET", "http://"+run.set.Addr+"/v2/", nil, nil)
				require.Equal(t, 401, status, "an unauthenticated /v2/ through the proxy is challenged")
			}
			start := time.Now()
			res := runConformance(t, tool, run.set.Addr, run.user, run.pass)
			t.Logf("conformance-replicas-%s: %d passed, %d failed, %d skipped in %v; requests per replica %v",
				run.name, res.pass, res.failed, res.skipped, time.Since(start).Round(time.Second), run.set.Proxy.counts())
			assert.Positive(t, res.pass)
			assert.Zero(t, res.failed, "failed:\n%s", res.failures)
			assert.Zero(t, res.skipped, "skipped:\n%s", res.failures)
			for i, n := range run.set.Proxy.counts() {
				assert.Positive(t, n, "replica %d got no request", i)
			}
		})
	}
}

// conformanceResult is the summary of one run of the suite.
type conformanceResult struct {
	pass, failed, skipped int
	failures              string
}

// runConformance runs the suite against addr with every option on and
// reads its "OCI Conformance Result" block.
func runConformance(t *testing.T, tool, addr, user, pass string) conformanceResult {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+addr, "OCI_TLS=disabled", "OCI_VERSION=1.1",
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
		"OCI_USERNAME="+user, "OCI_PASSWORD="+pass,
		"OCI_API_PULL=true", "OCI_API_PUSH=true", "OCI_API_TAGS_LIST=true", "OCI_API_REFERRER=true",
		"OCI_API_BLOBS_DELETE=true", "OCI_API_MANIFESTS_DELETE=true", "OCI_API_TAGS_DELETE=true",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true", "OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_API_BLOBS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_DIGEST_HEADER=true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
		"OCI_DATA_SPARSE=true", "OCI_DATA_SHA512=true",
		"OCI_RESULTS_DIR="+filepath.Join(dir, "results"))
	out, _ := cmd.CombinedOutput() // the summary decides, not the exit status
	counts := map[string]int{}
	re := regexp.MustCompile(`^\s*(Pass|FAIL|Error|Skip|Disabled|Total)\.+:\s+(\d+)`)
	inResult := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var failures strings.Builder
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if strings.Contains(line, "OCI Conformance Result") {
			inResult = true
			continue
		}
		if m := re.FindStringSubmatch(line); inResult && m != nil {
			n, _ := strconv.Atoi(m[2])
			counts[m[1]] = n
		}
	}
	for i, l := range lines {
		if regexp.MustCompile(`: (FAIL|Skip|Error|Disabled)$`).MatchString(l) {
			for j := i; j < len(lines) && j < i+4; j++ {
				fmt.Fprintln(&failures, lines[j])
			}
		}
	}
	_, ok := counts["Total"]
	require.True(t, ok, "the suite printed no result:\n%s", tail(string(out), 4000))
	return conformanceResult{
		pass: counts["Pass"], failed: counts["FAIL"] + counts["Error"], skipped: counts["Skip"] + counts["Disabled"],
		failures: failures.String(),
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
