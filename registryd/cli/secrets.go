package cli

// registryd secrets: the secret store of the pull-through cache's
// upstream credentials (what a rule's credentialArn names), on a store no
// daemon holds (--data) or through a daemon's admin API (--server). A
// value comes from stdin or a file and is never printed.

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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
)

var secretsCommand = &Command{
	Name:    "secrets",
	Summary: "put, list or delete the secrets pull-through cache rules authenticate with (--data, or a daemon with --server)",
	Run:     runSecrets,
}

func init() { Register(secretsCommand) }

// secretsFlags are the secrets command's own flags.
type secretsFlags struct {
	server, username string
	passwordStdin    bool
	valueFile, key   string
	asJSON           bool
}

// runSecrets runs "registryd secrets put|list|delete [flags] [NAME]".
func runSecrets(ctx context.Context, env Env, args []string) int {
	const synopsis = "secrets put|list|delete [--data DIR | --server URL [--username U] [--password-stdin]] [flags] [NAME]\n\n" +
		"put reads the value from stdin (one trailing newline dropped) or --value-file; a pull-through cache\n" +
		`rule's secret is named ecr-pullthroughcache/... and holds {"username": "...", "accessToken": "..."}.` + "\n" +
		"The value is never printed; list shows names, ARNs (a rule's credentialArn) and keys."
	if len(args) == 0 || helpRequested(args[:1]) {
		fs := flagSetFor(env, args, "secrets", synopsis)
		bindStoreFlags(fs, &Config{})
		fs.Usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[0], args[1:]
	f := &secretsFlags{}
	wantName := true
	switch sub {
	case "put", "delete":
	case "list":
		wantName = false
	default:
		fmt.Fprintf(env.Stderr, "registryd secrets: unknown subcommand %q (want put, list or delete)\n", sub)
		return exitUsage
	}
	syn := "secrets " + sub + " [flags] NAME"
	if !wantName {
		syn = "secrets " + sub + " [flags]"
	}
	fs := flagSetFor(env, args, "secrets "+sub, syn)
	cfg, err := parseFlags(fs, args, func(fs *flag.FlagSet, c *Config) {
		bindStoreFlags(fs, c)
		fs.StringVar(&f.server, "server", "", "act on this daemon (http://HOST:PORT) through its admin API instead of a store (--data)")
		fs.StringVar(&f.username, "username", "", "with --server: the user to authenticate as (password from the BERTH_PASSWORD environment variable, or --password-stdin)")
		fs.BoolVar(&f.passwordStdin, "password-stdin", false, "with --server: read the password from stdin's first line (the value then comes from --value-file)")
		switch sub {
		case "put":
			fs.StringVar(&f.valueFile, "value-file", "", "read the value from this file (default: stdin)")
			fs.StringVar(&f.key, "kms-key", "", "key-encryption key that seals it (default: the registry's default key)")
		case "list":
			fs.BoolVar(&f.asJSON, "json", false, "print JSON")
		}
	})
	if err != nil {
		if errors.Is(err, ErrConfig) {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return exitUsage
		}
		return flagExit(err)
	}
	if (wantName && fs.NArg() != 1) || (!wantName && fs.NArg() != 0) {
		fmt.Fprintf(env.Stderr, "registryd %s\n", syn)
		return exitUsage
	}
	if sub == "put" && f.passwordStdin && f.valueFile == "" {
		fmt.Fprintln(env.Stderr, "registryd secrets put: with --password-stdin the value comes from --value-file")
		return exitUsage
	}
	name := fs.Arg(0)
	var password string
	if f.server != "" && f.username != "" {
		password = os.Getenv("BERTH_PASSWORD")
		if f.passwordStdin {
			if password, err = readLine(env.Stdin); err != nil {
				fmt.Fprintln(env.Stderr, "registryd secrets: reading the password:", err)
				return exitError
			}
		}
	}
	var value []byte
	if sub == "put" {
		if value, err = readSecretValue(env, f.valueFile); err != nil {
			fmt.Fprintln(env.Stderr, "registryd secrets put:", err)
			return exitError
		}
		defer clear(value)
	}
	if f.server != "" {
		return secretsRemote(ctx, env, f, password, sub, name, value)
	}
	opts, err := cfg.EngineOptions()
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd secrets:", err)
		return exitUsage
	}
	eng, err := engine.Open(cfg.Data, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd: open store %s: %v (is a daemon serving it? then use --server)\n", cfg.Data, err)
		return exitError
	}
	code := secretsLocal(ctx, env, eng, f, sub, name, value)
	return closeStore(env, eng, code)
}

// readLine reads one line (the password of --password-stdin).
func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 4096 {
		n, err := r.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			b = append(b, one[0])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return strings.TrimRight(string(b), "\r"), nil
}

// readSecretValue reads a value from file, or stdin when file is "",
// dropping one trailing newline (what echo and editors add).
func readSecretValue(env Env, file string) ([]byte, error) {
	var r io.Reader = env.Stdin
	if file != "" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	if r == nil {
		return nil, errors.New("no value: give it on stdin or with --value-file")
	}
	b, err := io.ReadAll(io.LimitReader(r, engine.MaxSecretSize+2))
	if err != nil {
		return nil, fmt.Errorf("reading the value: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, errors.New("the value is empty")
	}
	return b, nil
}

// secretsLocal runs sub on a store no daemon holds, each change recorded
// in its audit log first (as the operating system's user).
func secretsLocal(ctx context.Context, env Env, eng *engine.Engine, f *secretsFlags, sub, name string, value []byte) int {
	var err error
	switch sub {
	case "list":
		var list []engine.SecretInfo
		if list, err = eng.Secrets(ctx); err == nil {
			err = printSecrets(env, list, f.asJSON)
		}
	case "put":
		action := "secretsmanager:PutSecretValue"
		if _, serr := eng.Secret(ctx, name); errors.Is(serr, engine.ErrSecretNotFound) {
			action = "secretsmanager:CreateSecret"
		}
		if err = recordLocal(ctx, eng, localChange{command: "secrets put", action: action, resource: eng.SecretARN(name)}); err == nil {
			var info engine.SecretInfo
			var created bool
			if info, created, err = eng.PutSecret(ctx, name, value, f.key); err == nil {
				printPut(env, info, created)
			}
		}
	case "delete":
		if err = recordLocal(ctx, eng, localChange{command: "secrets delete", action: "secretsmanager:DeleteSecret", resource: eng.SecretARN(name)}); err == nil {
			if err = eng.DeleteSecret(ctx, name); err == nil {
				fmt.Fprintf(env.Stdout, "deleted %s\n", name)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd secrets %s: %v\n", sub, err)
		return exitError
	}
	return exitOK
}

// secretsRemote runs sub through the admin API of the daemon at
// f.server.
func secretsRemote(ctx context.Context, env Env, f *secretsFlags, password, sub, name string, value []byte) int {
	base := strings.TrimSuffix(f.server, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	q := url.Values{}
	method, path := http.MethodPost, "secrets/"+sub
	var body io.Reader
	switch sub {
	case "list":
		method, path = http.MethodGet, "secrets"
	case "put":
		q.Set(admin.SecretName, name)
		if f.key != "" {
			q.Set(admin.SecretKey, f.key)
		}
		body = bytes.NewReader(value)
	case "delete":
		q.Set(admin.SecretName, name)
	}
	u := base + admin.Prefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd secrets: --server:", err)
		return exitUsage
	}
	req.Header.Set("User-Agent", "registryd-secrets")
	if f.username != "" {
		req.SetBasicAuth(f.username, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd secrets:", err)
		return exitError
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd secrets:", err)
		return exitError
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(env.Stderr, "registryd secrets %s: %s: %s\n", sub, resp.Status, strings.TrimSpace(string(answer)))
		return exitError
	}
	switch sub {
	case "list":
		var list []engine.SecretInfo
		if err := json.Unmarshal(answer, &list); err != nil {
			fmt.Fprintln(env.Stderr, "registryd secrets list: the answer:", err)
			return exitError
		}
		if err := printSecrets(env, list, f.asJSON); err != nil {
			fmt.Fprintln(env.Stderr, "registryd secrets list:", err)
			return exitError
		}
	case "put":
		var res admin.SecretPutResult
		if err := json.Unmarshal(answer, &res); err != nil {
			fmt.Fprintln(env.Stderr, "registryd secrets put: the answer:", err)
			return exitError
		}
		printPut(env, res.SecretInfo, res.Created)
	case "delete":
		fmt.Fprintf(env.Stdout, "deleted %s\n", name)
	}
	return exitOK
}

// printPut says what a put did.
func printPut(env Env, info engine.SecretInfo, created bool) {
	verb := "updated"
	if created {
		verb = "created"
	}
	fmt.Fprintf(env.Stdout, "%s %s (%s)\n", verb, info.Name, info.ARN)
}

// printSecrets prints secrets as a table, or JSON: never a value (they
// hold none).
func printSecrets(env Env, list []engine.SecretInfo, asJSON bool) error {
	if asJSON {
		return printJSON(env, list)
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKEY\tUPDATED\tARN")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Key, s.UpdatedAt.UTC().Format(time.RFC3339), s.ARN)
	}
	return tw.Flush()
}
