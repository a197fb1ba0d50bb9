package cli

// registryd secrets: the secret store of the pull-through cache's
// upstream credentials (what a rule's credentialArn names), through the
// admin API of the daemon holding the store (its admin socket, or
// --server), or on a store no daemon holds. A value comes from stdin or a
// file and is never printed.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
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
	valueFile, key string
	asJSON         bool
}

// runSecrets runs "registryd secrets put|list|delete [flags] [NAME]": on
// the daemon holding the store (its admin socket, or --server), else on
// the store itself.
func runSecrets(ctx context.Context, env Env, args []string) int {
	const synopsis = "secrets put|list|delete [flags] [NAME]\n\n" +
		"put reads the value from stdin (one trailing newline dropped) or --value-file; a pull-through cache\n" +
		`rule's secret is named ecr-pullthroughcache/... and holds {"username": "...", "accessToken": "..."}.` + "\n" +
		"The value is never printed; list shows names, ARNs (a rule's credentialArn) and keys."
	if code, done := subcommandUsage(env, args, "secrets", synopsis, true); done {
		return code
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
	t, code := parseTarget(env, fs, args, func(fs *flag.FlagSet, _ *Config) {
		switch sub {
		case "put":
			fs.StringVar(&f.valueFile, "value-file", "", "read the value from this file (default: stdin; with --password-stdin, required)")
			fs.StringVar(&f.key, "kms-key", "", "key-encryption key that seals it (default: the registry's default key)")
		case "list":
			fs.BoolVar(&f.asJSON, "json", false, "print JSON")
		}
	})
	if t == nil {
		return code
	}
	if (wantName && fs.NArg() != 1) || (!wantName && fs.NArg() != 0) {
		fmt.Fprintf(env.Stderr, "registryd %s\n", syn)
		return exitUsage
	}
	if sub == "put" && t.live.passwordStdin && f.valueFile == "" {
		fmt.Fprintln(env.Stderr, "registryd secrets put: with --password-stdin the value comes from --value-file")
		return exitUsage
	}
	name := fs.Arg(0)
	if code := t.open(ctx, env, fs, nil); code != exitOK {
		return code
	}
	var value []byte
	if sub == "put" {
		var err error
		if value, err = readSecretValue(env, f.valueFile); err != nil {
			fmt.Fprintln(env.Stderr, "registryd secrets put:", err)
			return t.close(env, exitError)
		}
		defer clear(value)
	}
	var err error
	if t.daemon != nil {
		err = secretsLive(ctx, env, t.daemon, f, sub, name, value)
	} else {
		err = secretsDirect(ctx, env, t.eng, f, sub, name, value)
	}
	code = exitOK
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd secrets %s: %v\n", sub, err)
		code = exitError
	}
	return t.close(env, code)
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

// secretsDirect runs sub on a store no daemon holds, each change
// recorded in its audit log first (as the operating system's user).
func secretsDirect(ctx context.Context, env Env, eng *engine.Engine, f *secretsFlags, sub, name string, value []byte) error {
	switch sub {
	case "list":
		list, err := eng.Secrets(ctx)
		if err != nil {
			return err
		}
		return printSecrets(env, list, f.asJSON)
	case "put":
		action := "secretsmanager:PutSecretValue"
		if _, serr := eng.Secret(ctx, name); errors.Is(serr, engine.ErrSecretNotFound) {
			action = "secretsmanager:CreateSecret"
		}
		if err := recordLocal(ctx, eng, localChange{command: "secrets put", action: action, resource: eng.SecretARN(name)}); err != nil {
			return err
		}
		info, created, err := eng.PutSecret(ctx, name, value, f.key)
		if err != nil {
			return err
		}
		printPut(env, info, created)
		return nil
	}
	if err := recordLocal(ctx, eng, localChange{command: "secrets delete", action: "secretsmanager:DeleteSecret", resource: eng.SecretARN(name)}); err != nil {
		return err
	}
	if err := eng.DeleteSecret(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "deleted %s\n", name)
	return nil
}

// secretsLive runs sub through the daemon's admin API.
func secretsLive(ctx context.Context, env Env, d *daemon, f *secretsFlags, sub, name string, value []byte) error {
	switch sub {
	case "list":
		var list []engine.SecretInfo
		if err := d.call(ctx, http.MethodGet, "secrets", nil, nil, &list); err != nil {
			return err
		}
		return printSecrets(env, list, f.asJSON)
	case "put":
		q := url.Values{admin.SecretName: {name}}
		if f.key != "" {
			q.Set(admin.SecretKey, f.key)
		}
		var res admin.SecretPutResult
		if err := d.call(ctx, http.MethodPost, "secrets/put", q, value, &res); err != nil {
			return err
		}
		printPut(env, res.SecretInfo, res.Created)
		return nil
	}
	var out struct{}
	if err := d.call(ctx, http.MethodPost, "secrets/delete", url.Values{admin.SecretName: {name}}, nil, &out); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "deleted %s\n", name)
	return nil
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
