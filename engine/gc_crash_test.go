//go:build unix

package engine

// Crash during gc: a child process (this test binary run again with
// BERTH_GC_CRASH_CHILD set, which TestMain dispatches) pushes, overwrites
// tags, deletes manifests and leaves stray blobs while collecting garbage
// in a loop with no grace; the parent SIGKILLs it at a random moment,
// reopens the store, and checks that fsck finds no corruption and every
// tag still pulls. Every other time the parent runs the next collection
// itself and checks that it finishes the job (no unreferenced blob, no
// orphan); the other times the leftovers are left to the next child's
// collections, which may be killed in turn.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

const (
	gcCrashChildEnv = "BERTH_GC_CRASH_CHILD"
	gcCrashKillsEnv = "BERTH_GC_CRASH_KILLS"
)

func init() { testChildren[gcCrashChildEnv] = runGCCrashChild }

// gcCrashChildLimit ends a child that its parent did not kill (the parent
// died first): no orphan process outlives a test run for long.
const gcCrashChildLimit = 60 * time.Second

// runGCCrashChild is the child process of TestGCCrash (TestMain runs it):
// it pushes, deletes and collects in the store under dir until it is
// killed.
func runGCCrashChild(dir string) int {
	e, err := Open(dir, quietOptions())
	if err != nil {
		return childFailed(err)
	}
	time.AfterFunc(gcCrashChildLimit, func() {
		fmt.Printf("error: not killed after %v\n", gcCrashChildLimit)
		os.Exit(5)
	})
	fmt.Println("ready")
	ctx := context.Background()
	go func() {
		for {
			if _, err := e.CollectGarbage(ctx, noGrace); err != nil {
				fmt.Printf("gc error: %v\n", err)
				os.Exit(4)
			}
		}
	}()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	shared := [][]byte{bytes.Repeat([]byte("shared layer one "), 300), bytes.Repeat([]byte("shared layer two "), 5000)}
	repos := []string{"gcc/a", "gcc/b"}
	type pushed struct {
		repo string
		d    digest.Digest
	}
	var mine []pushed
	for {
		repo := repos[r.IntN(2)]
		layers := [][]byte{rnd(100 + r.IntN(80000)), shared[r.IntN(2)]}
		tag := fmt.Sprintf("t%d", r.IntN(6))
		d, err := tryPushImage(ctx, e, repo, tag, layers...)
		if err == nil {
			mine = append(mine, pushed{repo, d})
		}
		switch r.IntN(4) {
		case 0:
			_, _ = e.PutBlob(ctx, repo, bytes.NewReader(rnd(1+r.IntN(70000))), "")
		case 1:
			if len(mine) > 0 {
				j := r.IntN(len(mine))
				_ = e.DeleteManifest(ctx, mine[j].repo, mine[j].d)
				mine = append(mine[:j], mine[j+1:]...)
			}
		}
	}
}

// TestGCCrash kills a collecting child (SIGKILL) at least 50 times
// (BERTH_GC_CRASH_KILLS; 10 with -short).
func TestGCCrash(t *testing.T) {
	kills := 50
	if testing.Short() {
		kills = 10
	}
	if s := os.Getenv(gcCrashKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		kills = n
	}
	dir := t.TempDir()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var finished, orphansSeen int
	for k := range kills {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), gcCrashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(out)
		require.True(t, sc.Scan(), "child %d said nothing", k)
		require.Equal(t, "ready", sc.Text())
		go func() {
			for sc.Scan() {
				t.Logf("child %d: %s", k, sc.Text())
			}
		}()
		// The kill must land at a random point of the child's real work
		// (another process, on the system's clock): a clock cannot serve.
		time.Sleep(time.Duration(20+r.IntN(400)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child %d ended on its own: %v", k, err)
		}

		e, err := Open(dir, quietOptions())
		require.NoError(t, err, "reopen after kill %d", k)
		fr := requireFsckClean(t, e, true)
		orphansSeen += len(fr.Orphans)
		for _, repo := range []string{"gcc/a", "gcc/b"} {
			tags, err := e.ListTags(ctx, repo, "", 0)
			if err != nil {
				continue // not created yet
			}
			for _, tag := range tags {
				require.NoError(t, pullAll(ctx, e, repo, tag), "kill %d: %s:%s", k, repo, tag)
			}
		}
		if k%2 == 1 {
			_, err := e.CollectGarbage(ctx, noGrace)
			require.NoError(t, err)
			require.Empty(t, unreferencedBlobs(t, e), "kill %d: the next gc finishes the job", k)
			requireFsckClean(t, e, false)
			finished++
		}
		require.NoError(t, e.Close())
	}
	t.Logf("%d kills, %d finishing collections, %d orphans seen after kills", kills, finished, orphansSeen)
}
