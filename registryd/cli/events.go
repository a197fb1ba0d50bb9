package cli

// registryd events: list the event queue, the webhooks' pending
// deliveries and their dead letters, redrive dead letters, make a
// webhook secret; of a store no daemon holds (--data) or of a daemon
// (--server, /admin/v1/events). docs/events.md.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
)

var eventsCommand = &Command{
	Name:    "events",
	Summary: "list queued events, webhook deliveries and dead letters; redrive dead letters; make a webhook secret",
	Run:     runEvents,
}

func init() { Register(eventsCommand) }

// eventsFlags are the events command's own flags.
type eventsFlags struct {
	server, username     string
	passwordStdin        bool
	state, webhook       string
	dead, queued, asJSON bool
	limit                int
}

func (f *eventsFlags) bindRemote(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "ask this daemon (http://HOST:PORT) through /admin/v1/events instead of a store (--data)")
	fs.StringVar(&f.username, "username", "", "with --server: the user to authenticate as (password from the BERTH_PASSWORD environment variable, or --password-stdin)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "with --server: read the password from stdin")
}

func runEvents(ctx context.Context, env Env, args []string) int {
	const synopsis = "events list|redrive|secret [flags]"
	if len(args) == 0 || helpRequested(args[:1]) {
		fmt.Fprintf(env.Stdout, "Usage: registryd %s\n\n", synopsis)
		fmt.Fprintln(env.Stdout, "  list     the webhooks' pending deliveries (--dead: their dead letters; --queued: events not yet routed)")
		fmt.Fprintln(env.Stdout, "  redrive  move a webhook's dead letters back to its queue (--webhook NAME)")
		fmt.Fprintln(env.Stdout, "  secret   print a new webhook secret (whsec_...) for the configuration's webhooks")
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		return runEventsList(ctx, env, args)
	case "redrive":
		return runEventsRedrive(ctx, env, args)
	case "secret":
		fs := flagSetFor(env, args, "events secret", "events secret")
		if err := fs.Parse(args); err != nil {
			return flagExit(err)
		}
		fmt.Fprintln(env.Stdout, engine.NewWebhookSecret())
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "registryd events: unknown subcommand %q (want list, redrive or secret)\n", sub)
	return exitUsage
}

// parseEventsFlags parses the flags of an events subcommand.
func parseEventsFlags(env Env, args []string, name, synopsis string, bind func(*flag.FlagSet, *eventsFlags)) (*Config, *eventsFlags, int) {
	fs := flagSetFor(env, args, name, synopsis)
	f := &eventsFlags{}
	cfg, err := parseFlags(fs, args, func(fs *flag.FlagSet, c *Config) {
		bindStoreFlags(fs, c)
		f.bindRemote(fs)
		bind(fs, f)
	})
	if err != nil {
		if errors.Is(err, ErrConfig) {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return nil, nil, exitUsage
		}
		return nil, nil, flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "registryd %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, nil, exitUsage
	}
	return cfg, f, exitOK
}

func runEventsList(ctx context.Context, env Env, args []string) int {
	cfg, f, code := parseEventsFlags(env, args, "events list",
		"events list [--data DIR | --server URL] [--dead | --queued] [--webhook NAME] [--limit N] [--json]",
		func(fs *flag.FlagSet, f *eventsFlags) {
			fs.BoolVar(&f.dead, "dead", false, "the dead letters: deliveries given up (attempts or age exhausted)")
			fs.BoolVar(&f.queued, "queued", false, "the events queued and not yet routed (recorded in the audit log, handed to the webhooks)")
			fs.StringVar(&f.webhook, "webhook", "", "one webhook's (default: every webhook's, configured or not)")
			fs.IntVar(&f.limit, "limit", 0, "at most this many (0: all)")
			fs.BoolVar(&f.asJSON, "json", false, "print each as a JSON line (the event as delivered, with its delivery's state)")
		})
	if cfg == nil {
		return code
	}
	v := url.Values{}
	switch {
	case f.dead && f.queued:
		fmt.Fprintln(env.Stderr, "registryd events list: --dead or --queued, not both")
		return exitUsage
	case f.dead:
		v.Set(admin.EventsState, string(engine.EventDead))
	case f.queued:
		v.Set(admin.EventsState, string(engine.EventQueued))
	default:
		v.Set(admin.EventsState, string(engine.EventPending))
	}
	if f.webhook != "" {
		v.Set(admin.EventsWebhook, f.webhook)
	}
	v.Set(admin.EventsLimit, strconv.Itoa(f.limit))
	q, err := admin.ParseEventQuery(v)
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd events list:", err)
		return exitUsage
	}
	out := newEventsOutput(env.Stdout, f.asJSON)
	if f.server != "" {
		resp, code := adminCall(ctx, env, "events list", f, http.MethodGet, "events", v)
		if resp == nil {
			return code
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var l engine.EventListing
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				fmt.Fprintln(env.Stderr, "registryd events list: a line of the answer:", err)
				return exitError
			}
			if err := out.add(l); err != nil {
				fmt.Fprintln(env.Stderr, "registryd events list:", err)
				return exitError
			}
		}
		if err := errors.Join(sc.Err(), out.flush()); err != nil {
			fmt.Fprintln(env.Stderr, "registryd events list:", err)
			return exitError
		}
		return exitOK
	}
	eng, code := openEventsStore(env, cfg)
	if eng == nil {
		return code
	}
	if err := errors.Join(eng.ListEvents(ctx, q, out.add), out.flush()); err != nil {
		fmt.Fprintln(env.Stderr, "registryd events list:", err)
		return closeStore(env, eng, exitError)
	}
	return closeStore(env, eng, exitOK)
}

func runEventsRedrive(ctx context.Context, env Env, args []string) int {
	cfg, f, code := parseEventsFlags(env, args, "events redrive", "events redrive --webhook NAME [--data DIR --config FILE | --server URL]",
		func(fs *flag.FlagSet, f *eventsFlags) {
			fs.StringVar(&f.webhook, "webhook", "", "the webhook whose dead letters go back to its queue (required; on a store, it must be in --config's webhooks)")
		})
	if cfg == nil {
		return code
	}
	if f.webhook == "" {
		fmt.Fprintln(env.Stderr, "registryd events redrive: --webhook is required")
		return exitUsage
	}
	if f.server != "" {
		resp, code := adminCall(ctx, env, "events redrive", f, http.MethodPost, "events/redrive", url.Values{admin.EventsWebhook: {f.webhook}})
		if resp == nil {
			return code
		}
		defer resp.Body.Close()
		var r admin.RedriveResult
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			fmt.Fprintln(env.Stderr, "registryd events redrive:", err)
			return exitError
		}
		fmt.Fprintf(env.Stdout, "%d dead letters of %s back in its queue\n", r.Redriven, r.Webhook)
		return exitOK
	}
	eng, code := openEventsStore(env, cfg)
	if eng == nil {
		return code
	}
	err := recordLocal(ctx, eng, localChange{command: "events redrive", action: "berth:RedriveEvents", resource: "*",
		parameters: map[string]string{"webhook": f.webhook}})
	var n int
	if err == nil {
		n, err = eng.RedriveEvents(ctx, f.webhook)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd events redrive:", err)
		return closeStore(env, eng, exitError)
	}
	fmt.Fprintf(env.Stdout, "%d dead letters of %s back in its queue (the daemon delivers them when it starts)\n", n, f.webhook)
	return closeStore(env, eng, exitOK)
}

// openEventsStore opens the store of cfg (which no daemon may hold), its
// events held for the daemon.
func openEventsStore(env Env, cfg *Config) (*engine.Engine, int) {
	opts, err := cfg.EngineOptions()
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return nil, exitUsage
	}
	eng, err := engine.Open(cfg.Data, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd: open store %s: %v (is a daemon serving it? then use --server)\n", cfg.Data, err)
		return nil, exitError
	}
	return eng, exitOK
}

// adminCall makes an admin API request of the daemon at f.server and
// returns its answer when it is a 200 (else nil and the exit code, the
// error printed).
func adminCall(ctx context.Context, env Env, cmd string, f *eventsFlags, method, op string, v url.Values) (*http.Response, int) {
	base := strings.TrimSuffix(f.server, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, method, base+admin.Prefix+op+"?"+v.Encode(), nil)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd %s: --server: %v\n", cmd, err)
		return nil, exitUsage
	}
	req.Header.Set("User-Agent", "registryd-events")
	if f.username != "" {
		pass := os.Getenv("BERTH_PASSWORD")
		if f.passwordStdin {
			b, err := io.ReadAll(io.LimitReader(env.Stdin, 4096))
			if err != nil {
				fmt.Fprintf(env.Stderr, "registryd %s: reading the password: %v\n", cmd, err)
				return nil, exitError
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		req.SetBasicAuth(f.username, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd %s: %v\n", cmd, err)
		return nil, exitError
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		fmt.Fprintf(env.Stderr, "registryd %s: %s: %s\n", cmd, resp.Status, strings.TrimSpace(string(b)))
		return nil, exitError
	}
	return resp, exitOK
}

// eventsOutput prints listed events: a table, or JSON lines.
type eventsOutput struct {
	tw  *tabwriter.Writer
	enc *json.Encoder
}

func newEventsOutput(w io.Writer, asJSON bool) *eventsOutput {
	if asJSON {
		return &eventsOutput{enc: json.NewEncoder(w)}
	}
	o := &eventsOutput{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	fmt.Fprintln(o.tw, "STATE\tWEBHOOK\tSEQ\tEMITTED\tTYPE\tACTION\tREPOSITORY\tTAG\tDIGEST\tATTEMPTS\tLAST ERROR")
	return o
}

func (o *eventsOutput) add(l engine.EventListing) error {
	if o.enc != nil {
		return o.enc.Encode(l)
	}
	var action, repo, tag, dg string
	if d, err := l.Event.DecodeDetail(); err == nil {
		switch d := d.(type) {
		case engine.ImageActionDetail:
			action, repo, tag, dg = d.ActionType, d.RepositoryName, d.ImageTag, d.ImageDigest
		case engine.PullThroughCacheActionDetail:
			action, repo, tag, dg = "SYNC_"+d.SyncStatus, d.RepositoryName, d.ImageTag, d.ImageDigest
		case engine.ImageScanDetail:
			action, repo, dg = "SCAN_"+d.ScanStatus, d.RepositoryName, d.ImageDigest
		case engine.ReplicationActionDetail:
			action, repo, tag, dg = d.ActionType+"_"+d.Result, d.RepositoryName, d.ImageTag, d.ImageDigest
		}
	}
	if len(dg) > 19 {
		dg = dg[:19] // sha256: and 12 hex digits
	}
	webhook := l.Webhook
	if webhook == "" {
		webhook = "-"
	}
	lastErr := l.LastError
	if l.State == engine.EventDead {
		lastErr = l.DeadReason + ": " + lastErr
	}
	_, err := fmt.Fprintf(o.tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.State, webhook, l.Seq,
		l.EmittedAt.UTC().Format("2006-01-02T15:04:05Z"), l.Event.DetailType, action, repo, tag, dg, l.Attempts, oneLine(lastErr))
	return err
}

func (o *eventsOutput) flush() error {
	if o.tw != nil {
		return o.tw.Flush()
	}
	return nil
}
