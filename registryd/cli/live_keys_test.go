package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// ociClient is root's client of a daemon's OCI API.
type ociClient struct {
	t    *testing.T
	base string
}

// do sends one request as root and returns the status and body.
func (c ociClient) do(method, path string, body []byte) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	require.NoError(c.t, err)
	req.SetBasicAuth("root", "pw")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, string(b)
}

// push stores data as a blob of repo (a monolithic upload) and returns
// its digest and the answer's status.
func (c ociClient) push(repo string, data []byte) (digest.Digest, int, string) {
	d := digest.FromBytes(data)
	status, body := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data)
	return d, status, body
}

// pull reads blob d of repo.
func (c ociClient) pull(repo string, d digest.Digest) (int, string) {
	return c.do(http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil)
}

// TestKeysLive: keys are created, rotated, disabled, enabled and
// destroyed through the daemon's admin socket while it serves, without a
// restart: a pull of a blob that only the key wraps follows each change
// at once (disabled: 503; destroyed: the blob is shredded and gone, and a
// push is refused), while another repository keeps serving every pull
// throughout.
func TestKeysLive(t *testing.T) {
	f := newLiveFixture(t)
	data := f.copyStore(t)
	addr, _ := f.startLiveDaemon(t, data, nil)
	oci := ociClient{t: t, base: "http://" + addr}
	// cli runs a command of two words (or one and flags) on the store,
	// which the daemon holds: through its admin socket.
	cli := func(args ...string) string {
		t.Helper()
		args = append(append(append([]string{}, args[:2]...), "--data", data), args[2:]...)
		code, out, errOut := run(t, "", args...)
		require.Equal(t, exitOK, code, "registryd %s\nstderr: %s", strings.Join(args, " "), errOut)
		return out
	}

	require.Equal(t, "created live-k\n", cli("keys", "create", "live-k"))
	cli("repo", "create", "--encryption", "KMS", "--kms-key", "live-k", "vault")
	cli("repo", "create", "open")
	secret := []byte("only live-k wraps this blob's data key")
	ds, status, body := oci.push("vault", secret)
	require.Equal(t, http.StatusCreated, status, body)
	other := []byte("the default key wraps this one")
	do, status, body := oci.push("open", other)
	require.Equal(t, http.StatusCreated, status, body)

	// Pulls of the other repository, all along.
	var pulls, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if status, got := oci.pull("open", do); status != http.StatusOK || got != string(other) {
				failures.Add(1)
			}
			pulls.Add(1)
		}
	}()

	status, got := oci.pull("vault", ds)
	require.Equal(t, http.StatusOK, status, got)
	require.Equal(t, string(secret), got)

	// Rotate: a new version; the blob's data key is rewrapped under it
	// (the command waits for the background pass) and still reads.
	require.Equal(t, "rotated live-k to version 2\n", cli("keys", "rotate", "live-k"))
	var keys []engine.KeyStatus
	require.NoError(t, json.Unmarshal([]byte(cli("keys", "list", "--json")), &keys))
	for _, k := range keys {
		if k.Name == "live-k" {
			assert.Equal(t, uint32(2), k.PrimaryVersion)
			assert.Equal(t, 1, k.OnlyBlobs)
			assert.Zero(t, k.StaleWraps, "rewrapped while serving")
		}
	}
	status, got = oci.pull("vault", ds)
	require.Equal(t, http.StatusOK, status, got)

	// Disable: the cached data key is dropped; the next pull fails.
	cli("keys", "disable", "live-k")
	status, got = oci.pull("vault", ds)
	require.Equal(t, http.StatusServiceUnavailable, status, got)
	assert.Contains(t, got, "UNAVAILABLE")
	cli("keys", "enable", "live-k")
	status, got = oci.pull("vault", ds)
	require.Equal(t, http.StatusOK, status, got)
	require.Equal(t, string(secret), got)

	// Destroy: the blob only live-k wraps is shredded before the command
	// returns; its pull fails at once with the engine's answer for it, and
	// so does a push into the repository.
	require.Equal(t, "destroyed live-k\n", cli("keys", "destroy", "--yes", "live-k"))
	status, got = oci.pull("vault", ds)
	require.Equal(t, http.StatusNotFound, status, got)
	assert.Contains(t, got, "BLOB_UNKNOWN")
	_, status, got = oci.push("vault", []byte("after the key is gone"))
	require.Equal(t, http.StatusNotFound, status, got)
	assert.Contains(t, got, "encryption key destroyed")
	var repo engine.Repository
	require.NoError(t, json.Unmarshal([]byte(cli("repo", "describe", "vault")), &repo))
	assert.Equal(t, engine.KeyDestroyed, repo.KeyState)

	close(stop)
	wg.Wait()
	assert.Positive(t, pulls.Load())
	assert.Zero(t, failures.Load(), "the other repository served every pull of %d", pulls.Load())
	status, got = oci.pull("open", do)
	require.Equal(t, http.StatusOK, status, got)
	_, status, got = oci.push("open", []byte("pushed after the destroy"))
	require.Equal(t, http.StatusCreated, status, got)

	// Each key operation is in the audit log, as the local user's.
	recs := decodeLines(t, cli("audit", "--json", "--action", "kms:*", "--decision", "Allow"))
	var actions []string
	for _, r := range recs {
		if r.PrincipalType == engine.AuditLocal && r.Resource == "arn:aws:kms:us-east-1:000000000000:key/live-k" {
			actions = append(actions, r.Action)
		}
	}
	assert.Subset(t, actions, []string{"kms:CreateKey", "kms:EnableKeyRotation", "kms:DisableKey", "kms:EnableKey", "kms:ScheduleKeyDeletion",
		"kms:CreateGrant", "kms:DescribeKey"})
}
