package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthstore/berth/engine"
)

// buildRegistryd builds the registryd binary into the test's temporary
// directory and returns its path.
func buildRegistryd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "registryd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/berthstore/berth/registryd").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// daemon is a registryd child process serving a store.
type daemon struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// startDaemon runs bin serve on a free loopback port over data with
// args, and waits until it answers.
func startDaemon(t testing.TB, bin, data string, args ...string) *daemon {
	t.Helper()
	d := &daemon{addr: freePort(t), done: make(chan struct{})}
	d.cmd = exec.Command(bin, append([]string{"serve", "--addr", d.addr, "--data", data, "--access-log=false", "--log-level", "warn"}, args...)...)
	d.cmd.Stderr = os.Stderr
	require.NoError(t, d.cmd.Start())
	go func() { _ = d.cmd.Wait(); close(d.done) }()
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
			t.Fatal("registryd exited before it served")
		default:
		}
		require.True(t, time.Now().Before(deadline), "registryd did not start: %v", err)
		// Polling a child process that binds its port when it is ready:
		// no clock of ours can tell when that is.
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL (at once, no shutdown) and waits for the process to
// be gone. It may be called again.
func (d *daemon) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// ackTransport remembers the request id of every answer the client got
// (each answer the server sent is acknowledged: its record was written
// before it), and SIGKILLs the daemon right after the answer that
// killAfter picks.
type ackTransport struct {
	base      http.RoundTripper
	d         *daemon
	killAfter func(req *http.Request, resp *http.Response) bool

	mu    sync.Mutex
	acked []ackedRequest
}

// ackedRequest is one answered request.
type ackedRequest struct {
	id, user, method, path string
	status                 int
}

func (a *ackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	user, _, _ := req.BasicAuth()
	a.mu.Lock()
	a.acked = append(a.acked, ackedRequest{id: resp.Header.Get("X-Request-Id"), user: user, method: req.Method, path: req.URL.Path, status: resp.StatusCode})
	a.mu.Unlock()
	if a.killAfter != nil && a.killAfter(req, resp) {
		a.d.kill()
	}
	return resp, nil
}

// TestAuditSIGKILL: a real registryd, real clients, and SIGKILL right
// after an answer: after a refused push (the repository policy denies bob
// ecr:PutImage; the kill follows the 403), after an allowed push by
// go-containerregistry (the kill follows the manifest's 201), and after
// a burst of concurrent requests (the kill follows the 12th, 18th, 22nd
// or last answer of 24 under way: reads, refused pushes, listings). Twelve kills into one store; then `registryd audit --data
// DIR --json` must hold a record of every request the clients got an
// answer for (but the 401 challenges, which authentication answers before
// any decision), with principal, action, decision and statement.
func TestAuditSIGKILL(t *testing.T) {
	dir := t.TempDir()
	bin := buildRegistryd(t)

	data := filepath.Join(dir, "store")
	e, err := engine.Open(data, nil)
	require.NoError(t, err)
	_, err = e.CreateRepository(context.Background(), "app", engine.RepositorySettings{})
	require.NoError(t, err)
	require.NoError(t, e.SetRepositoryPolicy(context.Background(), "app", `{"Version":"2012-10-17","Statement":[{"Sid":"NoPushForBob",`+
		`"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"ecr:PutImage"}]}`))
	require.NoError(t, e.Close())
	var htpasswd bytes.Buffer
	for _, u := range []string{"alice", "bob"} {
		h, err := bcrypt.GenerateFromPassword([]byte("pw-"+u), bcrypt.MinCost)
		require.NoError(t, err)
		fmt.Fprintf(&htpasswd, "%s:%s\n", u, h)
	}
	htpasswdFile := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(htpasswdFile, htpasswd.Bytes(), 0o600))

	var acked []ackedRequest
	var pushed []string // tags alice's pushes got a 201 for
	const rounds = 12
	for round := range rounds {
		d := startDaemon(t, bin, data, "--htpasswd", htpasswdFile)
		tr := &ackTransport{base: &http.Transport{}, d: d}
		push := func(user, tag string) error {
			ref, err := name.ParseReference(d.addr+"/app:"+tag, name.Insecure)
			require.NoError(t, err)
			img, err := random.Image(2048, 2)
			require.NoError(t, err)
			return remote.Write(ref, img, remote.WithTransport(tr), remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
				remote.WithAuth(&authn.Basic{Username: user, Password: "pw-" + user}))
		}
		isManifestPut := func(req *http.Request) bool {
			return req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/")
		}
		switch round % 3 {
		case 0: // refused: bob's manifest PUT, killed right after the 403
			tr.killAfter = func(req *http.Request, resp *http.Response) bool {
				return isManifestPut(req) && resp.StatusCode == http.StatusForbidden
			}
			require.Error(t, push("bob", fmt.Sprintf("bob-%d", round)))
		case 1: // allowed: alice's push, killed right after the manifest's 201
			tag := fmt.Sprintf("v%d", round)
			tr.killAfter = func(req *http.Request, resp *http.Response) bool {
				return isManifestPut(req) && resp.StatusCode == http.StatusCreated
			}
			require.NoError(t, push("alice", tag))
			pushed = append(pushed, tag)
		case 2: // a burst: 24 requests at once, killed after the 12th, 18th, 22nd or last answer
			var answers sync.WaitGroup
			var mu sync.Mutex
			n, killAt := 0, []int{12, 18, 22, 24}[round/3]
			tr.killAfter = func(*http.Request, *http.Response) bool {
				mu.Lock()
				defer mu.Unlock()
				n++
				return n == killAt
			}
			client := &http.Client{Transport: tr}
			for i := range 24 {
				answers.Add(1)
				go func() {
					defer answers.Done()
					user, method, path := "alice", http.MethodGet, "/v2/app/tags/list"
					switch i % 4 {
					case 1:
						user, method, path = "bob", http.MethodPut, "/v2/app/manifests/burst" // denied: durable
					case 2:
						path = "/v2/app/manifests/" + pushed[len(pushed)-1]
					case 3:
						user, method, path = "bob", http.MethodGet, "/v2/_catalog"
					}
					req, err := http.NewRequest(method, "http://"+d.addr+path, strings.NewReader("{}"))
					if err != nil {
						return
					}
					req.SetBasicAuth(user, "pw-"+user)
					req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
					if resp, err := client.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
			}
			answers.Wait()
		}
		d.kill()
		acked = append(acked, tr.acked...)
	}

	// Reopen the store (the command opens it, as the daemon would) and
	// read the whole log.
	out, err := exec.Command(bin, "audit", "--data", data, "--json", "--limit", "0").Output()
	require.NoError(t, err)
	byID := map[string][]engine.AuditRecord{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	for sc.Scan() {
		r, err := engine.DecodeAuditRecord(sc.Bytes())
		require.NoError(t, err)
		byID[r.RequestID] = append(byID[r.RequestID], r)
	}
	checked, denied := 0, 0
	for _, a := range acked {
		require.NotEmpty(t, a.id, "an answer without a request id: %+v", a)
		if a.status == http.StatusUnauthorized {
			continue // authentication answered: no decision was made
		}
		recs := byID[a.id]
		require.NotEmpty(t, recs, "no record of the acknowledged %s %s (%d) by %s", a.method, a.path, a.status, a.user)
		for _, r := range recs {
			require.Equal(t, a.user, r.UserName, "%+v", a)
			require.Equal(t, "arn:aws:iam::000000000000:user/"+a.user, r.PrincipalARN)
			require.True(t, strings.HasPrefix(r.Action, "ecr:"), r.Action)
			require.NotEmpty(t, r.Statement)
			require.Equal(t, a.method, r.Method)
			require.Equal(t, a.path, r.Path)
		}
		last := recs[len(recs)-1]
		if a.status == http.StatusForbidden {
			require.Equal(t, engine.AuditExplicitDeny, last.Decision, "%+v", a)
			require.Equal(t, "ecr:PutImage", last.Action)
			require.Contains(t, last.Statement, `Sid "NoPushForBob"`)
			denied++
		} else {
			require.Equal(t, engine.AuditAllow, last.Decision, "%+v", a)
			if a.path == "/v2/_catalog" {
				// A listing's own record: what it showed and hid.
				require.Equal(t, "*", last.Resource)
				require.Contains(t, last.Parameters, "repositoriesShown")
			} else {
				require.Contains(t, last.Statement, "administrator")
			}
		}
		checked++
	}
	t.Logf("%d kills; %d acknowledged requests with a decision, all recorded (%d refusals); %d records in the log",
		rounds, checked, denied, len(byID))
	require.Positive(t, denied)
	require.Greater(t, checked, 4*rounds)
}
