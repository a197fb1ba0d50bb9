package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berthstore/berth/engine"
)

// HeaderSource is the request header that marks a replicated push: the
// source registry's "<account>/<region>". A Berth destination treats a
// request carrying it as a replication (ecr:ReplicateImage, REPLICATION
// templates) and refuses it from an identity not granted that action.
const HeaderSource = engine.ReplicationSourceHeader

// Destination is where one replication destination's jobs go.
type Destination struct {
	// Destination is the registry (region and registry ID) that the
	// replication configuration names.
	engine.ReplicationDestination
	// URL is the destination registry's base URL (https://host:port;
	// http:// only to a loopback address).
	URL string
	// Client sends the requests (its transport carries the TLS settings);
	// default http.DefaultClient.
	Client *http.Client
	// Username and Password authenticate every request (HTTP basic
	// authentication); empty: none.
	Username, Password string
	// Credentials, when set, gives the username and password of each job
	// instead (a secret read from the store, a login token minted with an
	// access key: either may change while the replicator runs).
	Credentials func(ctx context.Context) (username, password string, err error)
	// Concurrency is how many jobs run at once; default 4.
	Concurrency int
}

// Observer is told of every finished job (registryd's metrics).
type Observer interface {
	// ObserveReplication: job of destination dest ended with result
	// ("ok", "retry", "failed"), lag after the push that queued it,
	// having sent bytes of blobs.
	ObserveReplication(dest string, result string, lag time.Duration, bytes int64)
}

// Config configures a Replicator.
type Config struct {
	// Engine holds the queue and the images.
	Engine *engine.Engine
	// Source is this registry (sent in HeaderSource).
	Source engine.ReplicationSource
	// Destinations are the destinations it sends to.
	Destinations []Destination
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Observer, if set, is told of every job.
	Observer Observer
}

// Replicator runs the jobs of its destinations.
type Replicator struct {
	cfg   Config
	dests []*sender
}

// New checks cfg and returns a replicator; Run starts it.
func New(cfg Config) (*Replicator, error) {
	if cfg.Engine == nil {
		return nil, errors.New("replicate: no engine")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Replicator{cfg: cfg}
	seen := map[engine.ReplicationDestination]bool{}
	for _, d := range cfg.Destinations {
		if seen[d.ReplicationDestination] {
			return nil, fmt.Errorf("replicate: destination %s given twice", d.ReplicationDestination)
		}
		seen[d.ReplicationDestination] = true
		u, err := CheckURL(d.URL)
		if err != nil {
			return nil, fmt.Errorf("replicate: destination %s: %w", d.ReplicationDestination, err)
		}
		if d.Client == nil {
			d.Client = http.DefaultClient
		}
		if d.Concurrency <= 0 {
			d.Concurrency = 4
		}
		r.dests = append(r.dests, &sender{r: r, d: d, base: u, source: cfg.Source.Account + "/" + cfg.Source.Region})
	}
	return r, nil
}

// CheckURL parses a destination's base URL: https, or http to a loopback
// address (127.0.0.0/8, ::1, localhost); no path, query or credentials.
func CheckURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", s, err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("url %q: want scheme://host[:port] and nothing else", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("url %q: http:// only to a loopback address; use https://", s)
		}
	default:
		return nil, fmt.Errorf("url %q: scheme https (or http to a loopback address)", s)
	}
	u.Path = ""
	return u, nil
}

// Run sends until ctx ends, then waits for the jobs under way to stop.
func (r *Replicator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range r.dests {
		for range s.d.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.work(ctx)
			}()
		}
	}
	wg.Wait()
}

// work claims and runs jobs until ctx ends or the engine closes.
func (s *sender) work(ctx context.Context) {
	e := s.r.cfg.Engine
	for {
		job, err := e.ClaimReplication(ctx, s.d.ReplicationDestination)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, engine.ErrClosed) {
				s.r.cfg.Logger.Error("replication: claiming a job failed", "destination", s.d.ReplicationDestination.String(), "err", err)
				select {
				case <-time.After(time.Second):
					continue
				case <-ctx.Done():
				}
			}
			return
		}
		res, sent := s.run(ctx, job)
		if ctx.Err() != nil && res.Err != nil {
			// Cut short by the shutdown, not the destination's fault: the
			// job stays queued as it was.
			e.AbandonReplication(job)
			return
		}
		if err := e.FinishReplication(context.WithoutCancel(ctx), job, res); err != nil && !errors.Is(err, engine.ErrClosed) {
			s.r.cfg.Logger.Error("replication: recording a job's end failed; it runs again", "destination", s.d.ReplicationDestination.String(), "err", err)
		}
		if o := s.r.cfg.Observer; o != nil {
			result := "ok"
			switch {
			case res.Err != nil && res.Permanent:
				result = "failed"
			case res.Err != nil:
				result = "retry"
			}
			o.ObserveReplication(s.d.ReplicationDestination.String(), result, time.Since(job.QueuedAt), sent)
		}
		if res.Err != nil {
			s.r.cfg.Logger.Debug("replication: attempt failed", "destination", s.d.ReplicationDestination.String(),
				"repository", job.Repository, "tag", job.Tag, "digest", string(job.Digest), "err", res.Err)
		}
	}
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
