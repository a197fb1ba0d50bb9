package crypt

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePKCS11URI(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  PKCS11URI
		canon string
		err   string
	}{
		{in: "pkcs11:token=berth;object=team-a", want: PKCS11URI{"berth", "team-a"}, canon: "pkcs11:token=berth;object=team-a"},
		{in: "PKCS11:object=team-a;token=berth", want: PKCS11URI{"berth", "team-a"}, canon: "pkcs11:token=berth;object=team-a"},
		{in: "pkcs11:token=My%20HSM;object=k%3B1;type=secret-key", want: PKCS11URI{"My HSM", "k;1"}, canon: "pkcs11:token=My%20HSM;object=k%3B1"},
		{in: "pkcs11:token=berth;object=a;", want: PKCS11URI{"berth", "a"}, canon: "pkcs11:token=berth;object=a"},
		{in: "pkcs11:object=team-a", err: "token attribute required"},
		{in: "pkcs11:token=berth", err: "object attribute required"},
		{in: "pkcs11:token=berth;object=", err: "object attribute required"},
		{in: "pkcs11:token=berth;object=a;id=%01", err: `"id" is not supported`},
		{in: "pkcs11:token=berth;object=a;type=private", err: "secret-key"},
		{in: "pkcs11:token=berth;object=a?pin-value=1234", err: "query"},
		{in: "pkcs11:token=berth;object=a;object=b", err: "repeated"},
		{in: "pkcs11:token=berth;object", err: "no value"},
		{in: "pkcs11:token=berth;object=%zz", err: "object"},
		{in: "pkcs11:token=0123456789012345678901234567890123;object=a", err: "32 bytes"},
		{in: "team-a", err: "not a pkcs11: URI"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u, err := ParsePKCS11URI(tc.in)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrInvalidKey)
				assert.Contains(t, err.Error(), tc.err)
				assert.Equal(t, tc.in, CanonicalKeyName(tc.in), "a malformed name stays as it is")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, u)
			assert.Equal(t, tc.canon, u.String())
			assert.Equal(t, tc.canon, CanonicalKeyName(tc.in))
			back, err := ParsePKCS11URI(u.String())
			require.NoError(t, err)
			assert.Equal(t, u, back)
		})
	}
	assert.Equal(t, "team-a", CanonicalKeyName("team-a"))
}

func TestMultiProviderRoutes(t *testing.T) {
	ctx := context.Background()
	local, err := OpenKeyring(filepath.Join(t.TempDir(), "local.json"))
	require.NoError(t, err)
	hsm, err := OpenKeyring(filepath.Join(t.TempDir(), "hsm.json"))
	require.NoError(t, err)
	m := NewMultiProvider(local, Route{Prefix: "hsm:", Provider: hsm},
		Route{Prefix: PKCS11Scheme, Provider: NoProvider{Err: ErrUnsupported}})

	require.NoError(t, m.CreateKey(ctx, "hsm:a"))
	require.NoError(t, m.CreateKey(ctx, "b"))
	_, err = hsm.LookupKey(ctx, "hsm:a")
	require.NoError(t, err)
	_, err = local.LookupKey(ctx, "hsm:a")
	require.ErrorIs(t, err, ErrKeyNotFound)
	_, err = local.LookupKey(ctx, "b")
	require.NoError(t, err)

	dk, err := NewDataKey()
	require.NoError(t, err)
	w, err := m.Wrap(ctx, "HSM:a", dk, nil) // prefixes match regardless of case
	require.ErrorIs(t, err, ErrKeyNotFound, "the name itself is not case-folded")
	w, err = m.Wrap(ctx, "hsm:a", dk, nil)
	require.NoError(t, err)
	got, err := m.Unwrap(ctx, w, nil)
	require.NoError(t, err)
	assert.Equal(t, dk, got)

	v, err := m.RotateKey(ctx, "hsm:a")
	require.NoError(t, err)
	assert.Equal(t, uint32(2), v)
	require.NoError(t, m.SetKeyState(ctx, "b", KeyDisabled))
	info, err := m.LookupKey(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, KeyDisabled, info.State)

	keys, err := m.Keys(ctx)
	require.NoError(t, err)
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	assert.Equal(t, []string{"b", DefaultKeyName, DefaultKeyName, "hsm:a"}, names)

	err = m.CreateKey(ctx, "pkcs11:token=berth;object=x")
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = m.Wrap(ctx, "pkcs11:token=berth;object=x", dk, nil)
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = m.LookupKey(ctx, "pkcs11:token=berth;object=x")
	require.ErrorIs(t, err, ErrKeyNotFound)
	require.NoError(t, m.Close())
}

func TestKeyringKeyStates(t *testing.T) {
	ctx := context.Background()
	k, err := OpenKeyring(filepath.Join(t.TempDir(), "keyring.json"))
	require.NoError(t, err)
	require.ErrorIs(t, k.CreateKey(ctx, DefaultKeyName), ErrKeyExists)
	require.NoError(t, k.CreateKey(ctx, "a"))
	dk, err := NewDataKey()
	require.NoError(t, err)
	w1, err := k.Wrap(ctx, "a", dk, []byte("x"))
	require.NoError(t, err)
	_, err = k.RotateKey(ctx, "a")
	require.NoError(t, err)
	w2, err := k.Wrap(ctx, "a", dk, []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, uint32(2), w2.Version)
	for _, tc := range []struct {
		state KeyState
		want  error
	}{
		{KeyDisabled, ErrKeyDisabled},
		{KeyEnabled, nil},
		{KeyDestroyed, ErrKeyDestroyed},
	} {
		require.NoError(t, k.SetKeyState(ctx, "a", tc.state))
		for _, w := range []WrappedKey{w1, w2} {
			_, err := k.Unwrap(ctx, w, []byte("x"))
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
		}
	}
	require.ErrorIs(t, k.SetKeyState(ctx, "a", KeyEnabled), ErrKeyDestroyed)
	info, err := k.LookupKey(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, KeyDestroyed, info.State)
}
