//go:build pkcs11 && cgo

package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/internal/testenv"
)

// softHSM makes a fresh SoftHSM2 token labelled berth (user PIN 1234) in
// a temporary token directory and returns the module path and the token
// directory. Without SoftHSM2 the test stops (testenv.NeedSoftHSM: a
// skip on a developer's machine, a failure under CI).
func softHSM(t testing.TB) (module, tokenDir string) {
	t.Helper()
	module, util := testenv.NeedSoftHSM(t)
	dir := t.TempDir()
	tokenDir = filepath.Join(dir, "tokens")
	require.NoError(t, os.MkdirAll(tokenDir, 0o700))
	conf := filepath.Join(dir, "softhsm2.conf")
	require.NoError(t, os.WriteFile(conf, []byte("directories.tokendir = "+tokenDir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600))
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "berth", "--pin", "1234", "--so-pin", "5678").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return module, tokenDir
}

const (
	hsmA = "pkcs11:token=berth;object=team-a"
	hsmB = "pkcs11:token=berth;object=team-b"
)

// TestHSMSharedBlobRotateDestroy: a blob shared by repositories of two
// KEKs, rotation and crypto-shredding, with the keys in SoftHSM2, opened
// through the engine's own options (keyring for the default key, HSM for
// pkcs11:).
func TestHSMSharedBlobRotateDestroy(t *testing.T) {
	ctx := context.Background()
	mod, _ := softHSM(t)
	e := openTestEngine(t, &Options{PKCS11Module: mod, PKCS11PIN: "1234", FrameSize: 4 << 10})
	for _, k := range []string{hsmA, hsmB} {
		info, err := e.CreateKey(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, KeyEnabled, info.State)
	}
	kmsRepo(t, e, "a/app", hsmA)
	kmsRepo(t, e, "b/app", hsmB)
	kmsRepo(t, e, "local/app", "") // the keyring's default key, same engine
	common, onlyA := rnd(20<<10), rnd(7<<10)
	pushImage(t, e, "a/app", "v1", common, onlyA)
	pushImage(t, e, "b/app", "v2", common)
	pushImage(t, e, "local/app", "v3", common)
	dc := digest.FromBytes(common)
	rec, err := e.db.Blob(dc)
	require.NoError(t, err)
	require.Len(t, rec.Wraps, 3)
	for _, repo := range []string{"a/app", "b/app", "local/app"} {
		got, err := readRepoBlob(e, repo, dc)
		require.NoError(t, err)
		assert.Equal(t, common, got)
	}

	// Rotation inside the HSM: wraps move, files stay.
	before := fileIDs(t, e)
	v, err := e.RotateKey(ctx, hsmA)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), v)
	require.NoError(t, e.WaitRewraps(ctx))
	assert.Equal(t, before, fileIDs(t, e))
	keys, err := e.Keys(ctx)
	require.NoError(t, err)
	var sawA bool
	for _, k := range keys {
		if k.Name == hsmA {
			sawA = true
			assert.Equal(t, uint32(2), k.PrimaryVersion)
			assert.Equal(t, 3, k.Blobs) // common, onlyA, config
			assert.Zero(t, k.StaleWraps)
			assert.Equal(t, 1, k.Repositories)
		}
	}
	assert.True(t, sawA)
	e.dropDataKeys(hsmA)
	got, err := readRepoBlob(e, "a/app", digest.FromBytes(onlyA))
	require.NoError(t, err)
	assert.Equal(t, onlyA, got)

	// Disable, enable.
	require.NoError(t, e.DisableKey(ctx, hsmA))
	_, err = readRepoBlob(e, "a/app", dc)
	require.ErrorIs(t, err, ErrKeyUnavailable)
	require.NoError(t, e.EnableKey(ctx, hsmA))
	_, err = readRepoBlob(e, "a/app", dc)
	require.NoError(t, err)

	// Destroy: a/app is unreadable, b/app and local/app are not.
	require.NoError(t, e.DestroyKey(ctx, hsmA))
	_, err = readRepoBlob(e, "a/app", dc)
	require.ErrorIs(t, err, ErrKeyDestroyed)
	r, err := e.Repository(ctx, "a/app")
	require.NoError(t, err)
	assert.Equal(t, KeyDestroyed, r.KeyState)
	for _, repo := range []string{"b/app", "local/app"} {
		got, err := readRepoBlob(e, repo, dc)
		require.NoError(t, err)
		assert.Equal(t, common, got)
	}
	_, err = e.db.Blob(digest.FromBytes(onlyA))
	require.Error(t, err, "the blob only team-a wrapped is removed")
}

// TestHSMUnavailable: the HSM goes away (its sessions fail, then its
// token is removed) and comes back, with no restart.
func TestHSMUnavailable(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"failing sessions", "token removed"} {
		t.Run(how, func(t *testing.T) {
			mod, tokenDir := softHSM(t)
			var fail atomic.Bool
			// The provider's own clock, for its reconnect interval.
			hsmClk := manualClock()
			hsm, err := crypt.OpenPKCS11(crypt.PKCS11Config{Module: mod, PIN: "1234", ReconnectInterval: time.Second,
				Now: hsmClk.Now,
				FaultInjector: func(string) error {
					if fail.Load() {
						return errors.New("unplugged")
					}
					return nil
				}})
			require.NoError(t, err)
			kr, err := crypt.OpenKeyring(filepath.Join(t.TempDir(), "keyring.json"))
			require.NoError(t, err)
			kp := crypt.NewMultiProvider(kr, crypt.Route{Prefix: crypt.PKCS11Scheme, Provider: hsm})
			t.Cleanup(func() { kp.Close() })
			clk := manualClock()
			e := openTestEngine(t, &Options{KeyProvider: kp, FrameSize: 4 << 10, Clock: clk})
			for _, k := range []string{hsmA, hsmB} {
				_, err := e.CreateKey(ctx, k)
				require.NoError(t, err)
			}
			down, back := func() { fail.Store(true) }, func() { fail.Store(false) }
			if how == "token removed" {
				down = func() { require.NoError(t, os.Rename(tokenDir, tokenDir+".away")) }
				back = func() { require.NoError(t, os.Rename(tokenDir+".away", tokenDir)) }
			}
			up := func() {
				back()
				// The provider tries the token again once its reconnect
				// interval has passed.
				hsmClk.Advance(time.Second)
			}
			unavailableScenario(t, e, clk, hsmA, hsmB, down, up)

			// A repository on the keyring never noticed.
			kmsRepo(t, e, "local/app", "")
			down()
			_, err = e.PutBlob(ctx, "local/app", bytes.NewReader(rnd(100)), "")
			require.NoError(t, err)
			up()
		})
	}
}
