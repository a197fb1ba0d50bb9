//go:build pkcs11 && cgo

package crypt

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const teamA = "pkcs11:token=berth;object=team-a"

func openSoftHSM(t *testing.T, cfg PKCS11Config) (*PKCS11Provider, string) {
	t.Helper()
	mod, dir := softHSM(t)
	cfg.Module, cfg.PIN = mod, "1234"
	if cfg.ReconnectInterval == 0 {
		cfg.ReconnectInterval = time.Millisecond
	}
	p, err := OpenPKCS11(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p, dir
}

func TestPKCS11KeyLifecycle(t *testing.T) {
	ctx := context.Background()
	p, _ := openSoftHSM(t, PKCS11Config{})
	require.NoError(t, p.CreateKey(ctx, teamA))
	require.ErrorIs(t, p.CreateKey(ctx, "pkcs11:object=team-a;token=berth"), ErrKeyExists)

	dk, err := NewDataKey()
	require.NoError(t, err)
	w1, err := p.Wrap(ctx, teamA, dk, []byte("ad"))
	require.NoError(t, err)
	assert.Equal(t, uint32(1), w1.Version)
	assert.Len(t, w1.Ciphertext, gcmIVSize+DataKeySize+gcmTagBits/8)

	// Another spelling of the same URI opens the same wraps.
	w1b := w1
	w1b.KeyName = "pkcs11:object=team%2Da;token=berth;type=secret-key"
	got, err := p.Unwrap(ctx, w1b, []byte("ad"))
	require.NoError(t, err)
	assert.Equal(t, dk, got)

	v, err := p.RotateKey(ctx, teamA)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), v)
	w2, err := p.Wrap(ctx, teamA, dk, []byte("ad"))
	require.NoError(t, err)
	assert.Equal(t, uint32(2), w2.Version)
	for _, w := range []WrappedKey{w1, w2} {
		got, err := p.Unwrap(ctx, w, []byte("ad"))
		require.NoError(t, err)
		assert.Equal(t, dk, got)
	}
	info, err := p.LookupKey(ctx, teamA)
	require.NoError(t, err)
	assert.Equal(t, KeyInfo{Name: teamA, State: KeyEnabled, PrimaryVersion: 2, Versions: 2}, info)

	require.NoError(t, p.SetKeyState(ctx, teamA, KeyDisabled))
	_, err = p.Wrap(ctx, teamA, dk, []byte("ad"))
	require.ErrorIs(t, err, ErrKeyDisabled)
	_, err = p.Unwrap(ctx, w1, []byte("ad"))
	require.ErrorIs(t, err, ErrKeyDisabled)
	require.NoError(t, p.SetKeyState(ctx, teamA, KeyEnabled))
	_, err = p.Unwrap(ctx, w1, []byte("ad"))
	require.NoError(t, err)

	require.NoError(t, p.SetKeyState(ctx, teamA, KeyDestroyed))
	_, err = p.Unwrap(ctx, w2, []byte("ad"))
	require.ErrorIs(t, err, ErrKeyDestroyed)
	_, err = p.Wrap(ctx, teamA, dk, []byte("ad"))
	require.ErrorIs(t, err, ErrKeyDestroyed)
	require.ErrorIs(t, p.SetKeyState(ctx, teamA, KeyEnabled), ErrKeyDestroyed)
	require.ErrorIs(t, p.CreateKey(ctx, teamA), ErrKeyExists)
	keys, err := p.Keys(ctx)
	require.NoError(t, err)
	require.Equal(t, []KeyInfo{{Name: teamA, State: KeyDestroyed}}, keys)

	_, err = p.Wrap(ctx, "pkcs11:token=berth;object=nope", dk, nil)
	require.ErrorIs(t, err, ErrKeyNotFound)
	_, err = p.Wrap(ctx, "pkcs11:token=other;object=team-a", dk, nil)
	require.ErrorIs(t, err, ErrKeyNotFound)
}

// The key material is generated in the token, sensitive and not
// extractable: the token refuses to hand out CKA_VALUE.
func TestPKCS11KeysStayInToken(t *testing.T) {
	ctx := context.Background()
	p, _ := openSoftHSM(t, PKCS11Config{})
	require.NoError(t, p.CreateKey(ctx, teamA))
	err := p.do(ctx, func(s pkcs11.SessionHandle, gen uint64) error {
		k, err := p.key(s, gen, "team-a", true)
		require.NoError(t, err)
		h := k.versions[1]
		_, err = p.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		assert.True(t, isCKR(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE), "CKA_VALUE readable: %v", err)
		attrs, err := p.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil),
		})
		require.NoError(t, err)
		assert.Equal(t, []byte{0}, attrs[0].Value, "extractable")
		assert.Equal(t, []byte{1}, attrs[1].Value, "sensitive")
		assert.Equal(t, []byte{1}, attrs[2].Value, "token")
		return nil
	})
	require.NoError(t, err)
}

func TestPKCS11TamperedWraps(t *testing.T) {
	ctx := context.Background()
	p, _ := openSoftHSM(t, PKCS11Config{})
	require.NoError(t, p.CreateKey(ctx, teamA))
	other := "pkcs11:token=berth;object=team-b"
	require.NoError(t, p.CreateKey(ctx, other))
	dk, err := NewDataKey()
	require.NoError(t, err)
	w, err := p.Wrap(ctx, teamA, dk, []byte("blob\x00sha256:aa"))
	require.NoError(t, err)
	flip := func(i int) func(WrappedKey) WrappedKey {
		return func(w WrappedKey) WrappedKey {
			w.Ciphertext = append([]byte(nil), w.Ciphertext...)
			w.Ciphertext[i] ^= 0x40
			return w
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(WrappedKey) WrappedKey
		ad     string
		want   error
	}{
		{name: "other associated data", mutate: func(w WrappedKey) WrappedKey { return w }, ad: "blob\x00sha256:bb", want: ErrUnauthenticated},
		{name: "flip in IV", mutate: flip(3), want: ErrUnauthenticated},
		{name: "flip in ciphertext", mutate: flip(gcmIVSize + 5), want: ErrUnauthenticated},
		{name: "flip in tag", mutate: flip(len(w.Ciphertext) - 1), want: ErrUnauthenticated},
		{name: "truncated", mutate: func(w WrappedKey) WrappedKey { w.Ciphertext = w.Ciphertext[:20]; return w }, want: ErrUnauthenticated},
		{name: "other key", mutate: func(w WrappedKey) WrappedKey { w.KeyName = other; return w }, want: ErrUnauthenticated},
		{name: "unknown version", mutate: func(w WrappedKey) WrappedKey { w.Version = 7; return w }, want: ErrKeyNotFound},
		{name: "malformed name", mutate: func(w WrappedKey) WrappedKey { w.KeyName = "pkcs11:object=x"; return w }, want: ErrInvalidKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ad := tc.ad
			if ad == "" {
				ad = "blob\x00sha256:aa"
			}
			got, err := p.Unwrap(ctx, tc.mutate(w), []byte(ad))
			require.ErrorIs(t, err, tc.want)
			assert.False(t, errors.Is(err, ErrUnavailable), "a bad wrap is not an outage: %v", err)
			assert.Nil(t, got)
		})
	}
	// The token is still fine afterwards.
	got, err := p.Unwrap(ctx, w, []byte("blob\x00sha256:aa"))
	require.NoError(t, err)
	assert.Equal(t, dk, got)
}

// manualClock is a clock that moves only when the test advances it.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestPKCS11Unavailable(t *testing.T) {
	ctx := context.Background()
	var down atomic.Bool
	clk := &manualClock{t: time.Now()}
	const interval = time.Second
	p, tokenDir := openSoftHSM(t, PKCS11Config{ReconnectInterval: interval, Now: clk.Now, FaultInjector: func(op string) error {
		if down.Load() {
			return errors.New("unplugged")
		}
		return nil
	}})
	require.NoError(t, p.CreateKey(ctx, teamA))
	dk, err := NewDataKey()
	require.NoError(t, err)
	w, err := p.Wrap(ctx, teamA, dk, nil)
	require.NoError(t, err)

	t.Run("failing sessions", func(t *testing.T) {
		down.Store(true)
		_, err := p.Wrap(ctx, teamA, dk, nil)
		require.ErrorIs(t, err, ErrUnavailable)
		_, err = p.Unwrap(ctx, w, nil)
		require.ErrorIs(t, err, ErrUnavailable)
		_, err = p.Keys(ctx)
		require.ErrorIs(t, err, ErrUnavailable)
		down.Store(false)
		// Back, but within the reconnect interval the provider does not
		// try the token again: the last error stands until it passes.
		_, err = p.Unwrap(ctx, w, nil)
		require.ErrorIs(t, err, ErrUnavailable)
		clk.Advance(interval)
		got, err := p.Unwrap(ctx, w, nil)
		require.NoError(t, err)
		assert.Equal(t, dk, got)
	})

	t.Run("token removed", func(t *testing.T) {
		require.NoError(t, os.Rename(tokenDir, tokenDir+".away"))
		_, err := p.Wrap(ctx, teamA, dk, nil)
		require.ErrorIs(t, err, ErrUnavailable)
		_, err = p.Unwrap(ctx, w, nil)
		require.ErrorIs(t, err, ErrUnavailable)
		require.NoError(t, os.Rename(tokenDir+".away", tokenDir))
		_, err = p.Unwrap(ctx, w, nil)
		require.ErrorIs(t, err, ErrUnavailable, "within the reconnect interval")
		clk.Advance(interval)
		got, err := p.Unwrap(ctx, w, nil)
		require.NoError(t, err)
		assert.Equal(t, dk, got)
		w2, err := p.Wrap(ctx, teamA, dk, nil)
		require.NoError(t, err)
		_, err = p.Unwrap(ctx, w2, nil)
		require.NoError(t, err)
	})
}

func TestPKCS11WrongPIN(t *testing.T) {
	mod, _ := softHSM(t)
	_, err := OpenPKCS11(PKCS11Config{Module: mod, PIN: "0000"})
	require.ErrorIs(t, err, ErrInvalidKey)
	p, err := OpenPKCS11(PKCS11Config{Module: mod, PIN: "1234", Token: "absent"})
	require.NoError(t, err, "an absent token is an outage, not a configuration error")
	defer p.Close()
	_, err = p.Keys(context.Background())
	require.ErrorIs(t, err, ErrUnavailable)
}

func TestPKCS11Concurrent(t *testing.T) {
	ctx := context.Background()
	p, _ := openSoftHSM(t, PKCS11Config{MaxSessions: 3})
	require.NoError(t, p.CreateKey(ctx, teamA))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				dk, _ := NewDataKey()
				w, err := p.Wrap(ctx, teamA, dk, []byte{byte(j)})
				if err == nil {
					_, err = p.Unwrap(ctx, w, []byte{byte(j)})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestMultiProviderWithPKCS11(t *testing.T) {
	ctx := context.Background()
	p, _ := openSoftHSM(t, PKCS11Config{})
	kr, err := OpenKeyring(t.TempDir() + "/keyring.json")
	require.NoError(t, err)
	m := NewMultiProvider(kr, Route{Prefix: PKCS11Scheme, Provider: p})
	require.NoError(t, m.CreateKey(ctx, teamA))
	require.NoError(t, m.CreateKey(ctx, "local"))
	keys, err := m.Keys(ctx)
	require.NoError(t, err)
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	assert.Equal(t, []string{DefaultKeyName, "local", teamA}, names)
	dk, _ := NewDataKey()
	for _, name := range []string{teamA, "local"} {
		w, err := m.Wrap(ctx, name, dk, nil)
		require.NoError(t, err)
		got, err := m.Unwrap(ctx, w, nil)
		require.NoError(t, err)
		assert.Equal(t, dk, got)
	}
	// The keyring does not know HSM names and the HSM provider does not
	// know keyring names.
	_, err = kr.LookupKey(ctx, teamA)
	require.ErrorIs(t, err, ErrKeyNotFound)
	_, err = p.LookupKey(ctx, "local")
	require.ErrorIs(t, err, ErrInvalidKey)
}
