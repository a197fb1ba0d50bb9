package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
)

var keysCommand = &Command{
	Name:    "keys",
	Summary: "list, create, rotate, disable, enable or destroy key-encryption keys (live, or on a stopped store)",
	Run:     keysCmd,
}

func init() { Register(keysCommand) }

// keysCmd runs "registryd keys SUBCOMMAND [flags] [NAME]".
func keysCmd(ctx context.Context, env Env, args []string) int {
	const synopsis = "keys list|create|rotate|disable|enable|destroy [flags] [NAME]\n\n" +
		"NAME is a keyring key name, or a pkcs11: URI (pkcs11:token=berth;object=team-a) of a key in the HSM."
	if code, done := subcommandUsage(env, args, "keys", synopsis, true); done {
		return code
	}
	sub, args := args[0], args[1:]
	var (
		asJSON, yes, noWait bool
		wantName            = true
	)
	extra := func(fs *flag.FlagSet) {}
	switch sub {
	case "list":
		wantName = false
		extra = func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") }
	case "create", "disable", "enable":
	case "rotate":
		extra = func(fs *flag.FlagSet) {
			fs.BoolVar(&noWait, "no-wait", false, "do not wait for the rewrap of the blobs' data keys (it resumes at the next start)")
		}
	case "destroy":
		extra = func(fs *flag.FlagSet) {
			fs.BoolVar(&yes, "yes", false, "confirm: every blob that only this key protects becomes unreadable for good")
		}
	default:
		fmt.Fprintf(env.Stderr, "registryd keys: unknown subcommand %q (want list, create, rotate, disable, enable or destroy)\n", sub)
		return exitUsage
	}
	syn := "keys " + sub + " [flags] NAME"
	if !wantName {
		syn = "keys " + sub + " [flags]"
	}
	fs := flagSetFor(env, args, "keys "+sub, syn)
	t, code := parseTarget(env, fs, args, func(fs *flag.FlagSet, _ *Config) { extra(fs) })
	if t == nil {
		return code
	}
	if wantName != (fs.NArg() == 1) || (!wantName && fs.NArg() != 0) {
		fmt.Fprintf(env.Stderr, "registryd %s\n", syn)
		return exitUsage
	}
	name := fs.Arg(0)
	if sub == "destroy" && !yes {
		fmt.Fprintf(env.Stderr, "registryd keys destroy: destroying %q makes every blob that only it protects unreadable for good; add --yes to confirm\n", name)
		return exitUsage
	}
	if code := t.open(ctx, env, fs, nil); code != exitOK {
		return code
	}
	var err error
	if t.daemon != nil {
		err = keysLive(ctx, env, t.daemon, sub, name, asJSON, noWait)
	} else {
		err = keysDirect(ctx, env, t.eng, sub, name, asJSON, noWait)
	}
	code = exitOK
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd keys %s: %v\n", sub, err)
		code = exitError
	}
	return t.close(env, code)
}

// keysDirect runs a key subcommand on the store itself.
func keysDirect(ctx context.Context, env Env, eng *engine.Engine, sub, name string, asJSON, noWait bool) error {
	if action, ok := keyActions[sub]; ok {
		if err := recordLocal(ctx, eng, localChange{command: "keys " + sub, action: action, resource: eng.KeyARN(name)}); err != nil {
			return err
		}
	}
	var err error
	switch sub {
	case "list":
		var keys []engine.KeyStatus
		keys, err = eng.Keys(ctx)
		if keys != nil {
			if perr := printKeyList(env, keys, asJSON); err == nil {
				err = perr
			}
		}
	case "create":
		if _, err = eng.CreateKey(ctx, name); err == nil {
			fmt.Fprintf(env.Stdout, "created %s\n", name)
		}
	case "rotate":
		var v uint32
		if v, err = eng.RotateKey(ctx, name); err == nil {
			fmt.Fprintf(env.Stdout, "rotated %s to version %d\n", name, v)
			if !noWait {
				if err = eng.WaitRewraps(ctx); err == nil {
					var st engine.RewrapStats
					// Anything the background pass missed (none, normally).
					if st, err = eng.RewrapKey(ctx, name); err == nil && st.Rewrapped > 0 {
						fmt.Fprintf(env.Stdout, "rewrapped %d more data keys\n", st.Rewrapped)
					}
				}
			}
		}
	case "disable":
		if err = eng.DisableKey(ctx, name); err == nil {
			fmt.Fprintf(env.Stdout, "disabled %s\n", name)
		}
	case "enable":
		if err = eng.EnableKey(ctx, name); err == nil {
			fmt.Fprintf(env.Stdout, "enabled %s\n", name)
		}
	case "destroy":
		if err = eng.DestroyKey(ctx, name); err == nil {
			fmt.Fprintf(env.Stdout, "destroyed %s\n", name)
		}
	}
	return err
}

// keysLive runs a key subcommand through the daemon's admin API, while it
// serves.
func keysLive(ctx context.Context, env Env, d *daemon, sub, name string, asJSON, noWait bool) error {
	if sub == "list" {
		var keys []engine.KeyStatus
		if err := d.call(ctx, http.MethodGet, "keys", nil, nil, &keys); err != nil {
			return err
		}
		return printKeyList(env, keys, asJSON)
	}
	q := url.Values{admin.KeyParam: {name}}
	if sub == "rotate" {
		q.Set("wait", strconv.FormatBool(!noWait))
	}
	var r admin.KeyResult
	if err := d.call(ctx, http.MethodPost, "keys/"+sub, q, nil, &r); err != nil {
		return err
	}
	verb := map[string]string{"create": "created", "disable": "disabled", "enable": "enabled", "destroy": "destroyed"}[sub]
	if sub != "rotate" {
		_, err := fmt.Fprintf(env.Stdout, "%s %s\n", verb, name)
		return err
	}
	fmt.Fprintf(env.Stdout, "rotated %s to version %d\n", name, r.Version)
	if r.Rewrapped > 0 {
		fmt.Fprintf(env.Stdout, "rewrapped %d more data keys\n", r.Rewrapped)
	}
	return nil
}

// printKeyList prints keys as JSON or as a table.
func printKeyList(env Env, keys []engine.KeyStatus, asJSON bool) error {
	if asJSON {
		return printJSON(env, keys)
	}
	printKeys(env, keys)
	return nil
}

// keyActions are the KMS actions the key subcommands that change a key
// amount to, as the audit log records them.
var keyActions = map[string]string{
	"create":  "kms:CreateKey",
	"rotate":  "kms:EnableKeyRotation",
	"disable": "kms:DisableKey",
	"enable":  "kms:EnableKey",
	"destroy": "kms:ScheduleKeyDeletion",
}

func printKeys(env Env, keys []engine.KeyStatus) {
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tVERSION\tREPOSITORIES\tBLOBS\tONLY-THIS-KEY\tSECRETS\tSTALE-WRAPS")
	for _, k := range keys {
		stale := fmt.Sprint(k.StaleWraps)
		if k.Rewrapping {
			stale += " (rewrapping)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", k.Name, k.State, k.PrimaryVersion, k.Repositories, k.Blobs, k.OnlyBlobs, k.Secrets, stale)
	}
	tw.Flush()
}
