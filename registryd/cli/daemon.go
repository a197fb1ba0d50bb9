package cli

// The commands that touch a store run where the store is: on the store
// itself when no process holds it, or through the admin API of the daemon
// that holds it, found by the store's admin socket (<data>/admin.sock,
// --admin-socket) or named with --server URL (docs/registryd.md, "Live
// and offline").

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/adminsock"
)

// liveFlags are the flags that reach a running daemon.
type liveFlags struct {
	server        string
	user          string
	passwordStdin bool
}

// bind defines --server, --server-user and --password-stdin (the store's
// --admin-socket is one of the store flags, bound with --data).
func (l *liveFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&l.server, "server", "", "ask the registryd at this URL (http://HOST:PORT) through its admin API, with --server-user's credentials (default: the daemon holding --data, through its admin socket, when one does; else the store itself)")
	fs.StringVar(&l.user, "server-user", "", "with --server: the user to authenticate as; the password is read from $"+serverPasswordEnv+" or, with --password-stdin, from stdin")
	fs.BoolVar(&l.passwordStdin, "password-stdin", false, "with --server: read --server-user's password from stdin")
}

// daemon is the admin API of a running registryd: on its address
// (--server, basic credentials), or on its admin socket (the caller is
// this process's user, as the kernel names it).
type daemon struct {
	// name is how messages name it: its URL, or "admin socket PATH".
	name   string
	base   string
	client *http.Client
	// user and password are --server's basic credentials ("" for none).
	user, password string
	socket         bool
}

// errDaemonFlags reports a flag that does not apply to the chosen mode.
var errDaemonFlags = errors.New("registryd: flags that do not apply")

// findDaemon returns the daemon a command talks to: the one --server
// names, else the one answering on the store's admin socket; nil when
// none does (the command then opens the store itself). A socket this
// user may not connect to is an error, not a reason to try the store.
func (l *liveFlags) findDaemon(ctx context.Context, env Env, cfg *Config) (*daemon, error) {
	if l.server != "" {
		base := strings.TrimRight(l.server, "/")
		if !strings.Contains(base, "://") {
			base = "http://" + base
		}
		if _, err := url.Parse(base); err != nil {
			return nil, fmt.Errorf("%w: --server %q: %w", errDaemonFlags, l.server, err)
		}
		if l.passwordStdin && l.user == "" {
			return nil, fmt.Errorf("%w: --password-stdin needs --server-user", errDaemonFlags)
		}
		d := &daemon{name: base, base: base, client: &http.Client{}, user: l.user}
		if l.user != "" {
			d.password = os.Getenv(serverPasswordEnv)
			if l.passwordStdin {
				b, err := io.ReadAll(io.LimitReader(env.Stdin, 4096))
				if err != nil {
					return nil, fmt.Errorf("reading the password: %w", err)
				}
				d.password = strings.TrimRight(string(b), "\r\n")
			}
		}
		return d, nil
	}
	if l.user != "" || l.passwordStdin {
		return nil, fmt.Errorf("%w: --server-user and --password-stdin need --server (through the admin socket the caller is this process's user)", errDaemonFlags)
	}
	path, ok := adminSocketPath(cfg)
	if !ok {
		return nil, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := adminsock.Dial(dctx, path)
	switch {
	case errors.Is(err, adminsock.ErrNoDaemon):
		return nil, nil
	case errors.Is(err, adminsock.ErrPermission):
		return nil, fmt.Errorf("the store %s is served by a daemon whose admin socket %s this user may not use: run the command as the daemon's user or root, or use --server URL", cfg.Data, path)
	case err != nil:
		return nil, err
	}
	c.Close()
	return &daemon{name: "admin socket " + path, base: adminsock.BaseURL, client: adminsock.Client(path), socket: true}, nil
}

// daemonError is an admin API's refusal or failure, as the OCI API's
// error JSON words it.
type daemonError struct {
	daemon  string
	status  int
	code    string
	message string
}

func (e *daemonError) Error() string {
	text := fmt.Sprintf("%s: %d %s", e.daemon, e.status, http.StatusText(e.status))
	if e.code != "" {
		text += " " + e.code
	}
	if e.message != "" {
		text += ": " + e.message
	}
	return text
}

// errorCode is the OCI error code of a daemon's answer ("" for another
// error).
func errorCode(err error) string {
	var de *daemonError
	if errors.As(err, &de) {
		return de.code
	}
	return ""
}

// send makes one admin API request (op is the path under /admin/v1/)
// and returns the answer of a 200; any other answer is a *daemonError.
func (d *daemon) send(ctx context.Context, method, op string, q url.Values, body []byte) (*http.Response, error) {
	u := d.base + admin.Prefix + op
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	req.Header.Set("User-Agent", "registryd-cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.user != "" {
		req.SetBasicAuth(d.user, d.password)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	de := &daemonError{daemon: d.name, status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 {
		de.code, de.message = e.Errors[0].Code, e.Errors[0].Message
	} else {
		de.message = strings.TrimSpace(string(b))
	}
	return nil, de
}

// call makes one admin API request and decodes its JSON answer into out.
func (d *daemon) call(ctx context.Context, method, op string, q url.Values, body []byte, out any) error {
	resp, err := d.send(ctx, method, op, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: the answer to %s is not what the admin API answers: %w", d.name, op, err)
	}
	return nil
}

// storeFlagNames are the flags that open a store (bindStoreFlags), but
// --data and --admin-socket, which find its daemon.
var storeFlagNames = func() map[string]bool {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	bindStoreFlags(fs, &Config{})
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	delete(names, "data")
	delete(names, "admin-socket")
	return names
}()

// misplacedFlags returns the flags given on the command line that do not
// apply to d: those that open a store (the daemon's configuration decides
// for its store), the command's own directOnly ones, and, with --server,
// --data and --admin-socket.
func misplacedFlags(fs *flag.FlagSet, d *daemon, directOnly ...string) []string {
	var out []string
	fs.Visit(func(f *flag.Flag) {
		switch {
		case storeFlagNames[f.Name], slices.Contains(directOnly, f.Name):
		case !d.socket && (f.Name == "data" || f.Name == "admin-socket"):
		default:
			return
		}
		out = append(out, "--"+f.Name)
	})
	sort.Strings(out)
	return out
}

// storeTarget is where a store command runs: a daemon holding the store,
// or the store itself, opened by the command.
type storeTarget struct {
	cfg    *Config
	live   liveFlags
	daemon *daemon
	eng    *engine.Engine
}

// close closes the store the command opened, folding its error into code.
func (t *storeTarget) close(env Env, code int) int {
	if t.eng == nil {
		return code
	}
	return closeStore(env, t.eng, code)
}

// parseTarget parses a store command's flags: the store flags, the live
// flags and extra's. A nil target comes with the exit code.
func parseTarget(env Env, fs *flag.FlagSet, args []string, extra func(*flag.FlagSet, *Config)) (*storeTarget, int) {
	t := &storeTarget{}
	cfg, err := parseFlags(fs, args, func(fs *flag.FlagSet, c *Config) {
		bindStoreFlags(fs, c)
		t.live.bind(fs)
		if extra != nil {
			extra(fs, c)
		}
	})
	if err != nil {
		if errors.Is(err, ErrConfig) {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return nil, exitUsage
		}
		return nil, flagExit(err)
	}
	t.cfg = cfg
	return t, exitOK
}

// open finds where the command runs: the daemon --server names, or the
// daemon answering on the store's admin socket, or else the store itself,
// opened here (with tune, if not nil, given the engine options).
// directOnly names the command's own flags that mean nothing to a
// daemon; given with one, they are a usage error.
func (t *storeTarget) open(ctx context.Context, env Env, fs *flag.FlagSet, tune func(*engine.Options) error, directOnly ...string) int {
	d, err := t.live.findDaemon(ctx, env, t.cfg)
	switch {
	case errors.Is(err, errDaemonFlags):
		fmt.Fprintln(env.Stderr, "registryd:", strings.TrimPrefix(err.Error(), errDaemonFlags.Error()+": "))
		return exitUsage
	case err != nil:
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return exitError
	case d != nil:
		if bad := misplacedFlags(fs, d, directOnly...); len(bad) > 0 {
			fmt.Fprintf(env.Stderr, "registryd: %s do not apply to a running daemon (%s): its own configuration decides\n", strings.Join(bad, ", "), d.name)
			return exitUsage
		}
		t.daemon = d
		return exitOK
	}
	opts, err := t.cfg.EngineOptions()
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return exitUsage
	}
	if tune != nil {
		if err := tune(opts); err != nil {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return exitUsage
		}
	}
	eng, err := engine.Open(t.cfg.Data, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd: open store %s: %v (is a process holding it? a daemon answers on its admin socket, %s, unless it was started with --admin-socket none or elsewhere: then use --admin-socket PATH or --server URL)\n",
			t.cfg.Data, err, adminsock.DefaultPath(t.cfg.Data))
		return exitError
	}
	t.eng = eng
	return exitOK
}

// openTarget is parseTarget then open, for the commands that check
// nothing in between.
func openTarget(ctx context.Context, env Env, fs *flag.FlagSet, args []string, extra func(*flag.FlagSet, *Config), tune func(*engine.Options) error, directOnly ...string) (*storeTarget, int) {
	t, code := parseTarget(env, fs, args, extra)
	if t == nil {
		return nil, code
	}
	if code := t.open(ctx, env, fs, tune, directOnly...); code != exitOK {
		return nil, code
	}
	return t, exitOK
}

// codeInvalidArgument is the code of the admin API's invalid-argument answers (the
// OCI API's CodeInvalidArgument: 400 UNSUPPORTED).
const codeInvalidArgument = "UNSUPPORTED"
