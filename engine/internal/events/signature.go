package events

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The signature headers of a delivery, as the Standard Webhooks
// specification names them (standardwebhooks.com), so that its libraries
// (Go, Python, JavaScript, .NET, ...) verify Berth's deliveries as they
// are.
const (
	// HeaderID is the event's id: the idempotency key a receiver dedupes
	// by (the same in every attempt).
	HeaderID = "webhook-id"
	// HeaderTimestamp is when the attempt was signed, in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature is "v1," followed by the base64 of
	// HMAC-SHA256(key, id + "." + timestamp + "." + body); several,
	// space-separated, may be given.
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts a secret's text: "whsec_" and the base64 of the
// key, as Standard Webhooks writes secrets.
const SecretPrefix = "whsec_"

// The bounds of a secret's key, in bytes.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock before Verify refuses it (a replay).
const DefaultTolerance = 5 * time.Minute

// ErrSecret reports a secret that is not "whsec_" and the base64 of 24 to
// 64 bytes.
var ErrSecret = errors.New("events: bad webhook secret")

// ErrSignature reports a delivery whose signature does not verify: the
// headers missing or malformed, the timestamp out of tolerance, or no
// signature matching.
var ErrSignature = errors.New("events: webhook signature does not verify")

// ParseSecret returns the key of a secret's text ("whsec_" + base64).
func ParseSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: it must start with %q (make one with `registryd events secret`)", ErrSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: the text after %q is not base64: %v", ErrSecret, SecretPrefix, err)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: a key of %d bytes; want %d to %d", ErrSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// NewSecret returns a fresh secret's text: 32 random bytes.
func NewSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// Sign returns the signature header's value for an attempt of the event
// id at timestamp ts (Unix seconds) whose body is body.
func Sign(key []byte, id string, ts int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts, body))
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SetHeaders sets the signature headers of an attempt at now on h.
func SetHeaders(h http.Header, key []byte, id string, now time.Time, body []byte) {
	ts := now.Unix()
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, Sign(key, id, ts, body))
}

// Verify checks a delivery as a receiver does: the signature headers in
// h, the body as received, the receiver's clock now and how far the
// timestamp may be from it (DefaultTolerance when zero). It returns the
// event's id (the idempotency key) when a v1 signature matches. Errors
// wrap ErrSignature.
func Verify(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) (string, error) {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return "", fmt.Errorf("%w: missing %s, %s or %s", ErrSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: %s %q is not a number", ErrSignature, HeaderTimestamp, tsText)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return "", fmt.Errorf("%w: timestamp %d is %v from now (tolerance %v)", ErrSignature, ts, d.Round(time.Second), tolerance)
	}
	want := mac(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		// Strict: one encoding per signature (non-zero trailing bits
		// refused), so Verify accepts exactly the strings a receiver
		// comparing encoded signatures (docs/events.md) accepts.
		got, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err == nil && subtle.ConstantTimeCompare(got, want) == 1 {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: no v1 signature matches", ErrSignature)
}
