package pullthrough

// The handshakes with upstream registries: what a registry's ping
// (GET /v2/) answered — no authentication, a Basic challenge, or a
// Bearer challenge with its token realm — kept per registry, so that the
// client of another of its repositories (or of the same one after a
// secret changed) is made without asking again. A rule's upstream is
// pinged when the rule is made and when the daemon starts
// (Prime), so that the first pull through a rule waits for no handshake
// of its own, and finds connections to the upstream already open (as
// many as its fill uses at once).
//
// A kept answer is trusted for handshakeTTL. A request that the upstream
// refuses (401, 403 to the rule's credentials) forgets it and the
// repository's client, and the fill asks again once before it fails
// (withUpstream): a registry that changed its authentication costs one
// more round trip, never a failed pull.

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/singleflight"

	"github.com/berthstore/berth/engine"
)

// handshakeTTL is how long a registry's ping answer is used without
// asking again.
const handshakeTTL = 15 * time.Minute

// primeTimeout bounds the ping Prime sends.
const primeTimeout = 30 * time.Second

// maxHandshakes bounds the registries whose answers are kept.
const maxHandshakes = 1024

// handshakes keeps the ping answers of upstream registries, by registry
// (host and whether plain HTTP was allowed).
type handshakes struct {
	mu    sync.Mutex
	m     map[string]handshake
	pings singleflight.Group
}

type handshake struct {
	challenge *transport.Challenge
	at        time.Time
}

// handshakeKey names reg's entry.
func handshakeKey(reg name.Registry) string {
	return reg.Scheme() + "://" + reg.RegistryStr()
}

// challenge returns reg's ping answer: the kept one when fresh and
// reuse is set, else a new ping's (kept). kept reports that the answer
// was not asked for now.
func (c *Cache) challenge(ctx context.Context, reg name.Registry, reuse bool) (ch *transport.Challenge, kept bool, err error) {
	key := handshakeKey(reg)
	if reuse {
		c.shakes.mu.Lock()
		h, ok := c.shakes.m[key]
		c.shakes.mu.Unlock()
		if ok && time.Since(h.at) < handshakeTTL {
			return h.challenge, true, nil
		}
	}
	// One ping at a time per registry: a pull that comes while the
	// rule's Prime pings takes its answer.
	v, err, _ := c.shakes.pings.Do(key, func() (any, error) {
		ch, err := transport.Ping(ctx, reg, c.transport)
		if err != nil {
			return nil, err
		}
		c.shakes.mu.Lock()
		if c.shakes.m == nil || len(c.shakes.m) >= maxHandshakes {
			c.shakes.m = map[string]handshake{}
		}
		c.shakes.m[key] = handshake{challenge: ch, at: time.Now()}
		c.shakes.mu.Unlock()
		return ch, nil
	})
	if err != nil {
		return nil, false, err
	}
	return v.(*transport.Challenge), false, nil
}

// forgetChallenge drops reg's kept ping answer.
func (c *Cache) forgetChallenge(reg name.Registry) {
	c.shakes.mu.Lock()
	delete(c.shakes.m, handshakeKey(reg))
	c.shakes.mu.Unlock()
}

// Prime pings rule's upstream registry in the background and keeps its
// answer (and the connection it opened), so that the rule's first pull
// does not wait for the handshake. A failure is only logged: the pull
// that needs the upstream asks again, and reports it.
func (c *Cache) Prime(rule *engine.PullThroughCacheRule) {
	host, plain, err := engine.ParseUpstreamURL(rule.UpstreamRegistryURL)
	if err != nil {
		return
	}
	reg, err := upstreamRegistry(host, plain)
	if err != nil {
		return
	}
	c.goBackground(context.Background(), func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, primeTimeout)
		defer cancel()
		ch, _, err := c.challenge(ctx, reg, false)
		if err != nil {
			c.log.Debug("pull-through: the upstream registry did not answer its ping; its first pull asks again", "upstream", rule.UpstreamRegistryURL, "err", err)
			return
		}
		scheme := "https"
		if ch.Insecure {
			scheme = "http"
		}
		c.warmConnections(ctx, scheme+"://"+host+"/v2/")
	})
}

// warmConnections is how many connections to an upstream registry Prime
// leaves open: one for each blob a fill fetches at once, and one for the
// manifest, so that neither the first pull's manifest nor its blobs wait
// for a connection to be made.
const warmConnections = fillParallel + 1

// warmConnections sends warmConnections HEAD requests of url (the
// registry's /v2/) at once, so that as many connections to the upstream
// stay open in the transport's idle pool; their answers (a challenge,
// mostly) are dropped. The requests wait for each other before they go:
// a HEAD's connection is idle again as soon as its answer arrives, and a
// request that started after that would take it instead of opening one.
// (A request that finds a connection idle while its own dial is under way
// still leaves the dialled connection in the pool.)
func (c *Cache) warmConnections(ctx context.Context, url string) {
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for range warmConnections {
		ready.Add(1)
		wg.Go(func() {
			ready.Done()
			<-start
			req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
			if err != nil {
				return
			}
			resp, err := c.transport.RoundTrip(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()
}

// PrimeAll primes the upstream of each of rules (Prime), as the daemon
// starts.
func (c *Cache) PrimeAll(rules []engine.PullThroughCacheRule) {
	for i := range rules {
		c.Prime(&rules[i])
	}
}

// upstreamRegistry names the registry at host (plain: plain HTTP
// allowed).
func upstreamRegistry(host string, plain bool) (name.Registry, error) {
	var opts []name.Option
	if plain {
		opts = append(opts, name.Insecure)
	}
	return name.NewRegistry(host, opts...)
}
