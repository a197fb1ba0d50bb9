package cli

// The replication destinations of the configuration file: for each
// destination a replication rule may name ({region, registryId}), the
// endpoint its images go to and how to authenticate there
// (docs/replication.md).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/metrics"
	"github.com/berthstore/berth/replicate"
)

// Replication is the configuration file's replication section.
type Replication struct {
	// Destinations are the registries replication rules may name, each
	// with its endpoint. A rule naming another is refused.
	Destinations []ReplicationEndpoint `json:"destinations,omitempty"`
	// InitialBackoff and MaxBackoff shape the waits between the attempts
	// of a replication that fails (doubling, with jitter). Defaults 1s
	// and 5m.
	InitialBackoff Duration `json:"initialBackoff,omitempty"`
	MaxBackoff     Duration `json:"maxBackoff,omitempty"`
	// MaxAge is how long a replication is retried after its push before
	// it is given up (FAILED, DESTINATION_UNAVAILABLE). Default 24h.
	MaxAge Duration `json:"maxAge,omitempty"`
}

// ReplicationEndpoint maps a destination to the registry that serves it.
type ReplicationEndpoint struct {
	// Region and RegistryID name the destination as replication rules do.
	Region     string `json:"region"`
	RegistryID string `json:"registryId"`
	// URL is the registry's base URL: https://host:port, or http:// to a
	// loopback address.
	URL string `json:"url"`
	// CAFile is a PEM file of the certificate authorities trusted for the
	// URL. Empty: the system's.
	CAFile string `json:"caFile,omitempty"`
	// Username with Password or PasswordFile: basic authentication.
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	// Secret names a secret of the store (`registryd secrets put`) that
	// holds {"username": "...", "accessToken": "..."}, read at each job.
	Secret string `json:"secret,omitempty"`
	// AccessKeyID with SecretAccessKey or SecretAccessKeyFile: an access
	// key of the destination's ECR API; the replicator logs in with
	// GetAuthorizationToken (user AWS and the token), as docker login
	// does with ECR.
	AccessKeyID         string `json:"accessKeyId,omitempty"`
	SecretAccessKey     string `json:"secretAccessKey,omitempty"`
	SecretAccessKeyFile string `json:"secretAccessKeyFile,omitempty"`
	// Concurrency is how many images are sent at once. Default 4.
	Concurrency int `json:"concurrency,omitempty"`
}

// replicationList is the --replication-destination flag: one endpoint as
// JSON, repeatable, added to the configuration file's.
type replicationList struct{ c *Config }

func (l replicationList) String() string { return "" }

func (l replicationList) Set(s string) error {
	var e ReplicationEndpoint
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return fmt.Errorf("replication destination JSON: %w", err)
	}
	l.c.Replication.Destinations = append(l.c.Replication.Destinations, e)
	return nil
}

// destination is the engine's name of the endpoint's destination.
func (r *ReplicationEndpoint) destination() engine.ReplicationDestination {
	return engine.ReplicationDestination{Region: r.Region, RegistryID: r.RegistryID}
}

// check reports what is wrong with the endpoint, reading nothing but its
// files' presence.
func (r *ReplicationEndpoint) check() error {
	d := r.destination()
	if _, err := engine.ParseReplicationDestination(d.String()); err != nil {
		return err
	}
	if _, err := replicate.CheckURL(r.URL); err != nil {
		return err
	}
	n := 0
	if r.Username != "" || r.Password != "" || r.PasswordFile != "" {
		n++
		if r.Username == "" || (r.Password == "") == (r.PasswordFile == "") {
			return errors.New("username goes with one of password and passwordFile")
		}
	}
	if r.Secret != "" {
		n++
	}
	if r.AccessKeyID != "" || r.SecretAccessKey != "" || r.SecretAccessKeyFile != "" {
		n++
		if r.AccessKeyID == "" || (r.SecretAccessKey == "") == (r.SecretAccessKeyFile == "") {
			return errors.New("accessKeyId goes with one of secretAccessKey and secretAccessKeyFile")
		}
	}
	if n > 1 {
		return errors.New("give one of username/password, secret and accessKeyId")
	}
	if r.Concurrency < 0 || r.Concurrency > 64 {
		return fmt.Errorf("concurrency %d: 1 to 64 (0: the default, 4)", r.Concurrency)
	}
	return nil
}

// checkReplication reports every bad endpoint.
func (c *Config) checkReplication() []error {
	var errs []error
	seen := map[engine.ReplicationDestination]bool{}
	for i := range c.Replication.Destinations {
		r := &c.Replication.Destinations[i]
		if err := r.check(); err != nil {
			errs = append(errs, fmt.Errorf("replication.destinations[%d] (%s/%s): %w", i, r.RegistryID, r.Region, err))
			continue
		}
		if seen[r.destination()] {
			errs = append(errs, fmt.Errorf("replication.destinations[%d]: destination %s given twice", i, r.destination()))
		}
		seen[r.destination()] = true
	}
	for _, d := range []Duration{c.Replication.InitialBackoff, c.Replication.MaxBackoff, c.Replication.MaxAge} {
		if d < 0 {
			errs = append(errs, errors.New("replication: initialBackoff, maxBackoff and maxAge must not be negative"))
			break
		}
	}
	return errs
}

// replicationOptions sets the engine options of replication.
func (c *Config) replicationOptions(o *engine.Options) {
	for i := range c.Replication.Destinations {
		o.ReplicationDestinations = append(o.ReplicationDestinations, c.Replication.Destinations[i].destination())
	}
	o.ReplicationInitialBackoff = time.Duration(c.Replication.InitialBackoff)
	o.ReplicationMaxBackoff = time.Duration(c.Replication.MaxBackoff)
	o.ReplicationMaxAge = time.Duration(c.Replication.MaxAge)
}

// startReplication starts the replicator of the configured destinations
// (nothing without any); the returned stop waits for it.
func startReplication(ctx context.Context, cfg *Config, eng *engine.Engine, obs *metrics.Replication, log *slog.Logger) (stop func(), err error) {
	if len(cfg.Replication.Destinations) == 0 {
		return func() {}, nil
	}
	region, account := cfg.ECRRegion, cfg.ECRAccountID
	if region == "" {
		region = engine.DefaultRegion
	}
	if account == "" {
		account = engine.DefaultAccount
	}
	rc := replicate.Config{Engine: eng, Source: engine.ReplicationSource{Account: account, Region: region}, Logger: log, Observer: obs}
	for i := range cfg.Replication.Destinations {
		d, err := cfg.Replication.Destinations[i].replicateDestination(eng)
		if err != nil {
			return nil, fmt.Errorf("%w: replication.destinations[%d]: %w", ErrConfig, i, err)
		}
		rc.Destinations = append(rc.Destinations, d)
	}
	r, err := replicate.New(rc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	for _, d := range rc.Destinations {
		log.Info("replication destination", "destination", d.ReplicationDestination.String(), "url", d.URL)
	}
	return func() { cancel(); <-done }, nil
}

// replicateDestination is the endpoint as the replicator takes it: its
// client (TLS), its credentials.
func (r *ReplicationEndpoint) replicateDestination(eng *engine.Engine) (replicate.Destination, error) {
	d := replicate.Destination{ReplicationDestination: r.destination(), URL: r.URL, Concurrency: r.Concurrency}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 32
	tr.ResponseHeaderTimeout = 5 * time.Minute
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return d, fmt.Errorf("caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return d, fmt.Errorf("caFile %s: no PEM certificate", r.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	d.Client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	switch {
	case r.Username != "":
		d.Username, d.Password = r.Username, r.Password
		if r.PasswordFile != "" {
			b, err := os.ReadFile(r.PasswordFile)
			if err != nil {
				return d, fmt.Errorf("passwordFile: %w", err)
			}
			d.Password = strings.TrimRight(string(b), "\r\n")
		}
	case r.Secret != "":
		name := r.Secret
		d.Credentials = func(ctx context.Context) (string, string, error) {
			v, err := eng.SecretValue(ctx, name)
			if err != nil {
				return "", "", fmt.Errorf("secret %s: %w", name, err)
			}
			var c struct {
				Username    string `json:"username"`
				AccessToken string `json:"accessToken"`
			}
			if err := json.Unmarshal(v, &c); err != nil || c.Username == "" {
				return "", "", fmt.Errorf("secret %s: want {\"username\": ..., \"accessToken\": ...}", name)
			}
			return c.Username, c.AccessToken, nil
		}
	case r.AccessKeyID != "":
		secret := r.SecretAccessKey
		if r.SecretAccessKeyFile != "" {
			b, err := os.ReadFile(r.SecretAccessKeyFile)
			if err != nil {
				return d, fmt.Errorf("secretAccessKeyFile: %w", err)
			}
			secret = strings.TrimSpace(string(b))
		}
		d.Credentials = (&ecrLogin{url: r.URL, region: r.Region, keyID: r.AccessKeyID, secret: secret, client: d.Client}).credentials
	}
	return d, nil
}

// ecrLogin logs in to a destination's ECR API with an access key
// (GetAuthorizationToken) and keeps the token until shortly before it
// expires.
type ecrLogin struct {
	url, region, keyID, secret string
	client                     *http.Client

	mu         sync.Mutex
	user, pass string
	expires    time.Time
}

func (l *ecrLogin) credentials(ctx context.Context) (string, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Until(l.expires) > 10*time.Minute {
		return l.user, l.pass, nil
	}
	c := ecr.New(ecr.Options{
		Region:       l.region,
		Credentials:  credentials.NewStaticCredentialsProvider(l.keyID, l.secret, ""),
		HTTPClient:   l.client,
		BaseEndpoint: aws.String(l.url),
	})
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", "", fmt.Errorf("logging in to %s with access key %s: %w", l.url, l.keyID, err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return "", "", fmt.Errorf("logging in to %s: no token answered", l.url)
	}
	raw, err := base64.StdEncoding.DecodeString(*out.AuthorizationData[0].AuthorizationToken)
	if err != nil {
		return "", "", fmt.Errorf("logging in to %s: token: %w", l.url, err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("logging in to %s: token is not user:password", l.url)
	}
	l.user, l.pass = user, pass
	l.expires = time.Now().Add(time.Hour)
	if e := out.AuthorizationData[0].ExpiresAt; e != nil {
		l.expires = *e
	}
	return l.user, l.pass, nil
}
