package crypt

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// setFIPS makes fipsEnabled report on for the duration of the test.
func setFIPS(t *testing.T, on bool) {
	old := fipsEnabled
	fipsEnabled = func() bool { return on }
	t.Cleanup(func() { fipsEnabled = old })
}

// stdGCM returns crypto/cipher's AES-GCM for key.
func stdGCM(t testing.TB, key []byte) cipher.AEAD {
	t.Helper()
	b, err := aes.NewCipher(key)
	require.NoError(t, err)
	a, err := cipher.NewGCM(b)
	require.NoError(t, err)
	return a
}

// requireFrameLayout checks that sealed is frame n of s in the documented
// layout, nonce ‖ AES-256-GCM ciphertext ‖ tag under the frame key, by
// opening it with crypto/cipher directly.
func requireFrameLayout(t *testing.T, dk []byte, id [FileIDSize]byte, sealed []byte, n uint64, last bool, codec byte, want []byte) {
	t.Helper()
	var ad [FileIDSize + 10]byte
	s := &FrameSealer{fileID: id}
	std := stdGCM(t, derive(dk, id[:], "berth frame key v1"))
	got, err := std.Open(nil, sealed[:NonceSize], sealed[NonceSize:], s.frameAD(&ad, n, last, codec))
	require.NoError(t, err, "frame layout")
	require.Equal(t, want, got)
}

// TestFramesSameInFIPSMode seals frames and wraps the way FIPS 140-3 mode
// does (cipher.NewGCMWithRandomNonce) and the way it is done otherwise,
// and checks that each opens what the other sealed and that both write
// the documented layout.
func TestFramesSameInFIPSMode(t *testing.T) {
	ctx := context.Background()
	dk, err := NewDataKey()
	require.NoError(t, err)
	id := [FileIDSize]byte{1, 2, 3}
	pt := bytes.Repeat([]byte("frame "), 50000) // 300 kB: the assembly's size
	k, err := OpenKeyring(filepath.Join(t.TempDir(), "keyring.json"))
	require.NoError(t, err)
	material := k.file.Keys[DefaultKeyName].Versions[0].Material

	type sealedBy struct {
		frame []byte
		wrap  WrappedKey
	}
	seal := func(fips bool) sealedBy {
		setFIPS(t, fips)
		s, err := NewFrameSealer(dk, id)
		require.NoError(t, err)
		if fips {
			want, err := newFIPSGCM(make([]byte, 32))
			require.NoError(t, err)
			require.IsType(t, want, s.aead, "FIPS mode seals with cipher.NewGCMWithRandomNonce")
		} else {
			require.IsType(t, randomNonceAEAD{}, s.aead)
		}
		frame, err := s.Seal([]byte("prefix"), pt, 7, true, 1)
		require.NoError(t, err)
		require.Equal(t, "prefix", string(frame[:6]))
		w, err := k.Wrap(ctx, DefaultKeyName, dk, []byte("blob\x00sha256:x"))
		require.NoError(t, err)
		return sealedBy{frame[6:], w}
	}
	byFIPS, byDefault := seal(true), seal(false)
	for _, tc := range []struct {
		what   string
		sealed sealedBy
		fips   bool
	}{
		{"FIPS-sealed, opened by default", byFIPS, false},
		{"default-sealed, opened in FIPS mode", byDefault, true},
		{"FIPS-sealed, opened in FIPS mode", byFIPS, true},
	} {
		setFIPS(t, tc.fips)
		s, err := NewFrameSealer(dk, id)
		require.NoError(t, err)
		got, err := s.Open(nil, tc.sealed.frame, 7, true, 1)
		require.NoError(t, err, tc.what)
		require.Equal(t, pt, got, tc.what)
		_, err = s.Open(nil, tc.sealed.frame, 8, true, 1)
		require.ErrorIs(t, err, ErrUnauthenticated, tc.what)
		requireFrameLayout(t, dk, id, tc.sealed.frame, 7, true, 1, pt)

		dk2, err := k.Unwrap(ctx, tc.sealed.wrap, []byte("blob\x00sha256:x"))
		require.NoError(t, err, tc.what)
		require.Equal(t, dk, dk2)
		w := tc.sealed.wrap
		std := stdGCM(t, material)
		dk3, err := std.Open(nil, w.Ciphertext[:NonceSize], w.Ciphertext[NonceSize:], wrapAD(w.KeyName, w.Version, []byte("blob\x00sha256:x")))
		require.NoError(t, err, "wrap layout")
		require.Equal(t, dk, dk3)
		require.Len(t, w.Ciphertext, NonceSize+DataKeySize+16)
	}
}

func TestRandomNonceAEAD(t *testing.T) {
	a := randomNonceAEAD{stdGCM(t, make([]byte, 32))}
	require.Equal(t, 0, a.NonceSize())
	require.Equal(t, Overhead, a.Overhead())
	x := a.Seal(nil, nil, []byte("same"), nil)
	y := a.Seal(nil, nil, []byte("same"), nil)
	require.Len(t, x, 4+Overhead)
	require.NotEqual(t, x[:NonceSize], y[:NonceSize], "a fresh nonce for each message")
	got, err := a.Open([]byte("p:"), nil, x, nil)
	require.NoError(t, err)
	require.Equal(t, "p:same", string(got))
	for n := range NonceSize + 16 {
		_, err := a.Open(nil, nil, x[:n], nil)
		require.Error(t, err, n)
	}
	require.Panics(t, func() { a.Seal(nil, make([]byte, 12), nil, nil) })
	require.Panics(t, func() { _, _ = a.Open(nil, make([]byte, 12), x, nil) })
}

// frameAEADImpl returns the implementation a new sealer's frames use: the
// dynamic type of the AES-GCM inside it.
func frameAEADImpl(t *testing.T) string {
	t.Helper()
	dk, err := NewDataKey()
	require.NoError(t, err)
	s, err := NewFrameSealer(dk, [FileIDSize]byte{})
	require.NoError(t, err)
	r, ok := s.aead.(randomNonceAEAD)
	require.True(t, ok, "%T", s.aead)
	return fmt.Sprintf("%T", r.gcm)
}

func TestUseStdlibAESGCM(t *testing.T) {
	setFIPS(t, false)
	t.Setenv("BERTH_AESGCM", "")
	t.Cleanup(func() { UseStdlibAESGCM(false) })
	std := fmt.Sprintf("%T", stdGCM(t, make([]byte, 32)))

	// In a test process run in FIPS 140-3 mode (GODEBUG=fips140=on), that
	// is the reason every time.
	fipsMode := fips140.Enabled()
	requireReason := func(want, got string) {
		t.Helper()
		if fipsMode {
			want = "FIPS 140-3"
		}
		require.Contains(t, got, want)
	}

	impl, reason, err := AESGCMImplementation()
	require.NoError(t, err)
	t.Logf("by default: %s (%s), frames use %s", impl, reason, frameAEADImpl(t))
	if impl != "stdlib" {
		require.NotEqual(t, std, frameAEADImpl(t))
	}

	UseStdlibAESGCM(true)
	impl, reason, err = AESGCMImplementation()
	require.NoError(t, err)
	require.Equal(t, "stdlib", impl)
	requireReason("UseStdlibAESGCM", reason)
	require.Equal(t, std, frameAEADImpl(t))

	UseStdlibAESGCM(false)
	t.Setenv("BERTH_AESGCM", "stdlib")
	impl, reason, err = AESGCMImplementation()
	require.NoError(t, err)
	require.Equal(t, "stdlib", impl)
	requireReason("BERTH_AESGCM=stdlib", reason)
	require.Equal(t, std, frameAEADImpl(t))
}

func TestInvalidAESGCMSetting(t *testing.T) {
	dk, err := NewDataKey()
	require.NoError(t, err)
	for _, fips := range []bool{false, true} {
		setFIPS(t, fips)
		t.Setenv("BERTH_AESGCM", "off")
		_, err = NewFrameSealer(dk, [FileIDSize]byte{})
		require.ErrorIs(t, err, ErrInvalidSetting)
		require.EqualError(t, err, `crypt: invalid setting: BERTH_AESGCM="off": want "stdlib" (use crypto/cipher's AES-GCM) or "auto" (the default: the fastest implementation the CPU runs)`)
		_, _, err = AESGCMImplementation()
		require.ErrorIs(t, err, ErrInvalidSetting)
	}
}

// childEnv, set in the environment of this test binary, makes it act as
// the FIPS child of TestFIPSModeChild (fipsChild) instead of running the
// tests; its value is the directory the two share.
const childEnv = "BERTH_CRYPT_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		if err := fipsChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fipsExchange is what the parent and the child of TestFIPSModeChild
// sealed for each other.
type fipsExchange struct {
	DataKey []byte
	Frame   []byte
	Wrap    WrappedKey
	// Set by the child.
	FIPS         bool
	Impl, Reason string
}

var fipsChildAD = []byte("blob\x00sha256:fips")

// fipsChild opens the keyring in dir, unwraps the parent's wrap, opens
// its frame, and seals a frame and a wrap for the parent, writing
// child.json.
func fipsChild(dir string) error {
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(dir, "parent.json"))
	if err != nil {
		return err
	}
	var in fipsExchange
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	k, err := OpenKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		return err
	}
	dk, err := k.Unwrap(ctx, in.Wrap, fipsChildAD)
	if err != nil {
		return fmt.Errorf("unwrapping the parent's wrap: %w", err)
	}
	if !bytes.Equal(dk, in.DataKey) {
		return fmt.Errorf("unwrapped a different key")
	}
	s, err := NewFrameSealer(dk, [FileIDSize]byte{9})
	if err != nil {
		return err
	}
	pt, err := s.Open(nil, in.Frame, 0, true, 0)
	if err != nil {
		return fmt.Errorf("opening the parent's frame: %w", err)
	}
	out := fipsExchange{FIPS: fips140.Enabled()}
	if out.Impl, out.Reason, err = AESGCMImplementation(); err != nil {
		return err
	}
	if out.Frame, err = s.Seal(nil, append(pt, " and back"...), 0, true, 0); err != nil {
		return err
	}
	if out.Wrap, err = k.Wrap(ctx, DefaultKeyName, dk, fipsChildAD); err != nil {
		return err
	}
	b, err = json.Marshal(out)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "child.json"), b, 0o600)
}

// TestFIPSModeChild starts this test binary in FIPS 140-3 mode (GODEBUG
// fips140=on, and only, where cipher.NewGCM is refused) and checks that it
// reads the frames and wraps this process wrote and writes ones this
// process reads, with the standard library's AES-GCM. A purego build
// cannot start in FIPS 140-3 mode at all.
func TestFIPSModeChild(t *testing.T) {
	ctx := context.Background()
	t.Setenv("BERTH_AESGCM", "")
	for _, mode := range []string{"on", "only"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			k, err := OpenKeyring(filepath.Join(dir, "keyring.json"))
			require.NoError(t, err)
			dk, err := NewDataKey()
			require.NoError(t, err)
			s, err := NewFrameSealer(dk, [FileIDSize]byte{9})
			require.NoError(t, err)
			pt := bytes.Repeat([]byte("x"), 100000)
			in := fipsExchange{DataKey: dk}
			in.Frame, err = s.Seal(nil, pt, 0, true, 0)
			require.NoError(t, err)
			in.Wrap, err = k.Wrap(ctx, DefaultKeyName, dk, fipsChildAD)
			require.NoError(t, err)
			b, err := json.Marshal(in)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "parent.json"), b, 0o600))

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+dir, "GODEBUG=fips140="+mode)
			out, err := cmd.CombinedOutput()
			if puregoBuild {
				require.Error(t, err)
				require.Contains(t, string(out), "FIPS 140-3 mode is incompatible with the purego build tag")
				t.Logf("fips140=%s: Go refuses to start a purego build in FIPS 140-3 mode", mode)
				return
			}
			require.NoError(t, err, "child: %s", out)

			b, err = os.ReadFile(filepath.Join(dir, "child.json"))
			require.NoError(t, err)
			var got fipsExchange
			require.NoError(t, json.Unmarshal(b, &got))
			require.True(t, got.FIPS, "the child runs in FIPS 140-3 mode")
			require.Equal(t, "stdlib", got.Impl)
			require.Contains(t, got.Reason, "FIPS 140-3")
			back, err := s.Open(nil, got.Frame, 0, true, 0)
			require.NoError(t, err)
			require.Equal(t, append(pt, " and back"...), back)
			dk2, err := k.Unwrap(ctx, got.Wrap, fipsChildAD)
			require.NoError(t, err)
			require.Equal(t, dk, dk2)
			t.Logf("fips140=%s: %s (%s)", mode, got.Impl, got.Reason)
		})
	}
}
