package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The Standard Webhooks specification's published test vector: a
// signature that every library of the specification verifies.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignatureVector(t *testing.T) {
	key, err := ParseSecret(vectorSecret)
	require.NoError(t, err)
	require.Equal(t, vectorSignature, Sign(key, vectorID, vectorTimestamp, []byte(vectorBody)))
	h := http.Header{}
	h.Set(HeaderID, vectorID)
	h.Set(HeaderTimestamp, strconv.Itoa(vectorTimestamp))
	h.Set(HeaderSignature, vectorSignature)
	id, err := Verify(key, h, []byte(vectorBody), time.Unix(vectorTimestamp+10, 0), 0)
	require.NoError(t, err)
	require.Equal(t, vectorID, id)
}

func TestVerify(t *testing.T) {
	key, err := ParseSecret(NewSecret())
	require.NoError(t, err)
	other, err := ParseSecret(NewSecret())
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"version":"0"}`)
	signed := func() http.Header {
		h := http.Header{}
		SetHeaders(h, key, "ev-1", now, body)
		return h
	}
	_, err = Verify(key, signed(), body, now.Add(time.Minute), 0)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		key  []byte
		h    func() http.Header
		body string
		now  time.Time
	}{
		"body changed":    {key, signed, `{"version":"1"}`, now},
		"other key":       {other, signed, string(body), now},
		"too late":        {key, signed, string(body), now.Add(DefaultTolerance + time.Second)},
		"from the future": {key, signed, string(body), now.Add(-DefaultTolerance - time.Second)},
		"id changed":      {key, func() http.Header { h := signed(); h.Set(HeaderID, "ev-2"); return h }, string(body), now},
		"no signature":    {key, func() http.Header { h := signed(); h.Del(HeaderSignature); return h }, string(body), now},
		"bad timestamp":   {key, func() http.Header { h := signed(); h.Set(HeaderTimestamp, "soon"); return h }, string(body), now},
		"v2 only": {key, func() http.Header {
			h := signed()
			h.Set(HeaderSignature, "v2,"+h.Get(HeaderSignature)[3:])
			return h
		}, string(body), now},
	} {
		_, err := Verify(tc.key, tc.h(), []byte(tc.body), tc.now, 0)
		require.ErrorIs(t, err, ErrSignature, name)
	}

	// Several signatures (a key being rotated): one matching is enough.
	h := signed()
	h.Set(HeaderSignature, Sign(other, "ev-1", now.Unix(), body)+" "+h.Get(HeaderSignature))
	_, err = Verify(key, h, body, now, 0)
	require.NoError(t, err)
}

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ=",
		"whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"} {
		_, err := ParseSecret(bad)
		require.ErrorIs(t, err, ErrSecret, bad)
	}
	k, err := ParseSecret(NewSecret())
	require.NoError(t, err)
	require.Len(t, k, 32)
	require.NotEqual(t, NewSecret(), NewSecret())
}

// FuzzVerify: whatever the headers and body (a receiver's input), Verify
// answers without panicking, and accepts only what was signed.
func FuzzVerify(f *testing.F) {
	key, _ := ParseSecret(vectorSecret)
	f.Add(vectorID, strconv.Itoa(vectorTimestamp), vectorSignature, vectorBody)
	f.Add("", "", "", "")
	f.Add("id", "-9223372036854775808", "v1, v1,,, v2,abc", "{}")
	f.Fuzz(func(t *testing.T, id, ts, sig, body string) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		got, err := Verify(key, h, []byte(body), time.Unix(vectorTimestamp, 0), 0)
		if err == nil {
			n, _ := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
			require.Equal(t, h.Get(HeaderID), got)
			require.Contains(t, h.Get(HeaderSignature), Sign(key, got, n, []byte(body))[3:])
		}
	})
}

// verifyWithoutBerth is docs/events.md's receiver code, which uses
// nothing of Berth's: it must accept what Berth signs.
func verifyWithoutBerth(secret string, h http.Header, body []byte, now time.Time) (id string, ok bool) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", false
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return "", false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return id, true
		}
	}
	return "", false
}

func TestVerifyWithoutBerth(t *testing.T) {
	secret := NewSecret()
	key, err := ParseSecret(secret)
	require.NoError(t, err)
	now := time.Now()
	body := []byte(`{"version":"0","id":"ev-9"}`)
	h := http.Header{}
	SetHeaders(h, key, "ev-9", now, body)
	id, ok := verifyWithoutBerth(secret, h, body, now)
	require.True(t, ok)
	require.Equal(t, "ev-9", id)
	_, ok = verifyWithoutBerth(secret, h, append(body, ' '), now)
	require.False(t, ok)
	// The specification's vector, too.
	h = http.Header{}
	h.Set("webhook-id", vectorID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTimestamp))
	h.Set("webhook-signature", vectorSignature)
	_, ok = verifyWithoutBerth(vectorSecret, h, []byte(vectorBody), time.Unix(vectorTimestamp, 0))
	require.True(t, ok)
}

// TestVerifyCanonicalSignature: a signature whose base64 differs from the
// canonical encoding only in the bits past the MAC (the same bytes once
// decoded leniently) is refused, as a receiver comparing the encoded
// strings refuses it.
func TestVerifyCanonicalSignature(t *testing.T) {
	key, err := ParseSecret(vectorSecret)
	require.NoError(t, err)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	last := len(vectorSignature) - 2 // the character before the '='
	i := strings.IndexByte(alphabet, vectorSignature[last])
	require.GreaterOrEqual(t, i, 0)
	altered := vectorSignature[:last] + string(alphabet[i^1]) + "="
	for sig, ok := range map[string]bool{vectorSignature: true, altered: false} {
		h := http.Header{}
		h.Set(HeaderID, vectorID)
		h.Set(HeaderTimestamp, strconv.Itoa(vectorTimestamp))
		h.Set(HeaderSignature, sig)
		_, err := Verify(key, h, []byte(vectorBody), time.Unix(vectorTimestamp, 0), 0)
		if ok {
			require.NoError(t, err, sig)
		} else {
			require.ErrorIs(t, err, ErrSignature, sig)
		}
	}
}
