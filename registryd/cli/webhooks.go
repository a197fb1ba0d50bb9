package cli

// The webhooks of the configuration file: where events are delivered
// (engine.Webhook; docs/events.md).

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
)

// Webhook is one endpoint of the configuration file's webhooks list.
// Every field but name, url and the secret is optional.
type Webhook struct {
	// Name names the endpoint and its queue in the store (a-z, 0-9, '.',
	// '_', '-'; up to 64).
	Name string `json:"name"`
	// URL receives the signed POSTs: https://, or http:// to a loopback
	// address.
	URL string `json:"url"`
	// Secret signs the deliveries: "whsec_" and the base64 of 24 to 64
	// random bytes (`registryd events secret` makes one). Give it here
	// or in SecretFile, not both.
	Secret string `json:"secret,omitempty"`
	// SecretFile holds the secret (read at start; keep it 0600).
	SecretFile string `json:"secretFile,omitempty"`
	// EventTypes selects events by detail type ("ECR Image Action",
	// "ECR Pull Through Cache Action", ...). Empty: all.
	EventTypes []string `json:"eventTypes,omitempty"`
	// RepositoryPrefixes selects events of repositories whose names
	// start with one of these. Empty: all.
	RepositoryPrefixes []string `json:"repositoryPrefixes,omitempty"`
	// Timeout bounds one attempt. Default 10s.
	Timeout Duration `json:"timeout,omitempty"`
	// Concurrency is the number of sender goroutines (each repository's
	// events go out in order). Default 4.
	Concurrency int `json:"concurrency,omitempty"`
	// MaxAttempts and MaxAge bound a delivery before it is given up (a
	// dead letter). Defaults 20 and 24h.
	MaxAttempts int      `json:"maxAttempts,omitempty"`
	MaxAge      Duration `json:"maxAge,omitempty"`
	// InitialBackoff and MaxBackoff shape the waits between attempts
	// (doubling, with jitter). Defaults 1s and 1h.
	InitialBackoff Duration `json:"initialBackoff,omitempty"`
	MaxBackoff     Duration `json:"maxBackoff,omitempty"`
	// CAFile is a PEM file of the certificate authorities trusted for
	// the URL's certificate. Empty: the system's.
	CAFile string `json:"caFile,omitempty"`
}

// engineWebhook is w as the engine takes it: the secret read and parsed,
// the CA file loaded.
func (w *Webhook) engineWebhook() (engine.Webhook, error) {
	out := engine.Webhook{
		Name: w.Name, URL: w.URL, DetailTypes: w.EventTypes, RepositoryPrefixes: w.RepositoryPrefixes,
		Timeout: time.Duration(w.Timeout), Concurrency: w.Concurrency, MaxAttempts: w.MaxAttempts,
		MaxAge: time.Duration(w.MaxAge), InitialBackoff: time.Duration(w.InitialBackoff), MaxBackoff: time.Duration(w.MaxBackoff),
	}
	secret := w.Secret
	switch {
	case w.Secret != "" && w.SecretFile != "":
		return out, errors.New("secret and secretFile: give one")
	case w.SecretFile != "":
		b, err := os.ReadFile(w.SecretFile)
		if err != nil {
			return out, fmt.Errorf("secretFile: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	case w.Secret == "":
		return out, errors.New("secret or secretFile is required: every delivery is signed (`registryd events secret` makes one)")
	}
	key, err := engine.ParseWebhookSecret(secret)
	if err != nil {
		return out, err // says what is wrong, never the secret
	}
	out.Secret = key
	if w.CAFile != "" {
		pem, err := os.ReadFile(w.CAFile)
		if err != nil {
			return out, fmt.Errorf("caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return out, fmt.Errorf("caFile %s: no PEM certificate", w.CAFile)
		}
		out.RootCAs = pool
	}
	return out, nil
}

// engineWebhooks are the configured webhooks as the engine takes them,
// checked as the engine will check them.
func (c *Config) engineWebhooks() ([]engine.Webhook, error) {
	var out []engine.Webhook
	var errs []error
	for i := range c.Webhooks {
		w, err := c.Webhooks[i].engineWebhook()
		if err != nil {
			errs = append(errs, fmt.Errorf("webhooks[%d] (%s): %w", i, c.Webhooks[i].Name, err))
			continue
		}
		out = append(out, w)
	}
	if len(errs) == 0 {
		check := engine.Options{Webhooks: out, EventQueueMaxBytes: c.EventQueueMaxBytes}
		check.EnsureDefaults()
		if err := check.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}
