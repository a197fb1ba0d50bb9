package e2e

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rrProxy is the load balancer of a replica set in the tests: a reverse
// proxy on 127.0.0.1 that sends each request to the next replica in turn.
// A replica whose connection is refused (it died) is marked down and the
// request goes to the next one, as a load balancer with health checks
// does; a replica marked down gets requests again after downFor (its
// health check passing again). A request that a replica dies in the
// middle of is not retried (the proxy cannot know what it did): the
// client gets a 502 and retries, as it would behind any load balancer.
type rrProxy struct {
	// Addr is the proxy's host:port.
	Addr string

	srv     *httptest.Server
	downFor time.Duration

	mu       sync.Mutex
	backends []*rrBackend
	next     int

	// Sent counts the requests each replica answered, by index.
	sent []atomic.Int64
}

// rrBackend is one replica behind the proxy.
type rrBackend struct {
	addr      string
	downUntil time.Time
	// out keeps the replica out of the rotation (the test's choice).
	out bool
}

// startRRProxy starts a proxy over the replicas at addrs; it stops at the
// end of the test.
func startRRProxy(t testing.TB, addrs []string) *rrProxy {
	t.Helper()
	p := &rrProxy{downFor: time.Second, sent: make([]atomic.Int64, len(addrs))}
	for _, a := range addrs {
		p.backends = append(p.backends, &rrBackend{addr: a})
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "replica" // chosen per attempt by the transport
			pr.Out.Host = pr.In.Host    // the registry's answers name the proxy
			pr.SetXForwarded()
		},
		Transport:     &rrTransport{p: p, base: &http.Transport{MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: 2 * time.Minute}},
		FlushInterval: -1,
		ErrorLog:      nil,
	}
	p.srv = httptest.NewServer(rp)
	p.Addr = p.srv.Listener.Addr().String()
	t.Cleanup(p.srv.Close)
	return p
}

// setAddr points replica i at a new address (a restarted replica) and
// puts it back in the rotation.
func (p *rrProxy) setAddr(i int, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends[i].addr = addr
	p.backends[i].downUntil = time.Time{}
}

// setOut takes replica i out of the rotation (out) or puts it back.
func (p *rrProxy) setOut(i int, out bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends[i].out = out
}

// pick returns the next replica in turn that is neither out nor down, or
// -1 when there is none.
func (p *rrProxy) pick() (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for range p.backends {
		i := p.next % len(p.backends)
		p.next++
		b := p.backends[i]
		if !b.out && now.After(b.downUntil) {
			return i, b.addr
		}
	}
	return -1, ""
}

// markDown keeps replica i (at addr) out of the rotation for downFor.
func (p *rrProxy) markDown(i int, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.backends[i].addr == addr {
		p.backends[i].downUntil = time.Now().Add(p.downFor)
	}
}

// rrTransport sends a request to the replica the proxy picks, and to the
// next one when the connection is refused.
type rrTransport struct {
	p    *rrProxy
	base http.RoundTripper
}

func (t *rrTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var lastErr error = errors.New("rrproxy: no replica up")
	for range len(t.p.backends) {
		i, addr := t.p.pick()
		if i < 0 {
			break
		}
		out := req.Clone(req.Context())
		out.URL.Host = addr
		resp, err := t.base.RoundTrip(out)
		if err == nil {
			t.p.sent[i].Add(1)
			return resp, nil
		}
		lastErr = err
		if !refused(err) {
			return nil, err
		}
		// Nothing was sent: the next replica gets the request.
		t.p.markDown(i, addr)
	}
	return nil, lastErr
}

// refused reports whether err is a refused connection (nothing sent).
func refused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// counts returns how many requests each replica answered.
func (p *rrProxy) counts() []int64 {
	out := make([]int64, len(p.sent))
	for i := range p.sent {
		out[i] = p.sent[i].Load()
	}
	return out
}
