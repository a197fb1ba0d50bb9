package crypt

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSealValue: a value opens with its data key and associated data,
// and with nothing else; a tampered or truncated one never opens.
func TestSealValue(t *testing.T) {
	dk, err := NewDataKey()
	require.NoError(t, err)
	other, err := NewDataKey()
	require.NoError(t, err)
	value := []byte(`{"username":"u","accessToken":"t"}`)
	sealed, err := SealValue(dk, value, []byte("secret\x00a"))
	require.NoError(t, err)
	require.False(t, bytes.Contains(sealed, value), "sealed, not in the clear")
	again, err := SealValue(dk, value, []byte("secret\x00a"))
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "a random nonce each time")

	got, err := OpenValue(dk, sealed, []byte("secret\x00a"))
	require.NoError(t, err)
	require.Equal(t, value, got)

	_, err = OpenValue(dk, sealed, []byte("secret\x00b"))
	require.ErrorIs(t, err, ErrUnauthenticated, "other associated data")
	_, err = OpenValue(other, sealed, []byte("secret\x00a"))
	require.ErrorIs(t, err, ErrUnauthenticated, "another data key")
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	_, err = OpenValue(dk, bad, []byte("secret\x00a"))
	require.ErrorIs(t, err, ErrUnauthenticated, "tampered")
	_, err = OpenValue(dk, sealed[:10], []byte("secret\x00a"))
	require.ErrorIs(t, err, ErrUnauthenticated, "truncated")
	_, err = SealValue(dk[:5], value, nil)
	require.ErrorIs(t, err, ErrInvalidKey)
	_, err = SealValue(dk, make([]byte, MaxValueSize+1), nil)
	require.ErrorIs(t, err, ErrInvalidKey)
}
