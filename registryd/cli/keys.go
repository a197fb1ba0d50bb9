package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/berthstore/berth/engine"
)

var keysCommand = &Command{
	Name:    "keys",
	Summary: "list, create, rotate, disable, enable or destroy key-encryption keys of a store no daemon holds",
	Run:     keysCmd,
}

func init() { Register(keysCommand) }

// keysCmd runs "registryd keys SUBCOMMAND [flags] [NAME]".
func keysCmd(ctx context.Context, env Env, args []string) int {
	const synopsis = "keys list|create|rotate|disable|enable|destroy [flags] [NAME]\n\n" +
		"NAME is a keyring key name, or a pkcs11: URI (pkcs11:token=berth;object=team-a) of a key in the HSM."
	if len(args) == 0 || helpRequested(args[:1]) {
		fs := flagSetFor(env, args, "keys", synopsis)
		bindStoreFlags(fs, &Config{})
		fs.Usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
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
	cfg, err := parseFlags(fs, args, func(fs *flag.FlagSet, c *Config) {
		bindStoreFlags(fs, c)
		extra(fs)
	})
	if err != nil {
		if errors.Is(err, ErrConfig) {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return exitUsage
		}
		return flagExit(err)
	}
	if wantName != (fs.NArg() == 1) || (!wantName && fs.NArg() != 0) {
		fmt.Fprintf(env.Stderr, "registryd %s\n", syn)
		return exitUsage
	}
	if sub == "destroy" && !yes {
		fmt.Fprintf(env.Stderr, "registryd keys destroy: destroying %q makes every blob that only it protects unreadable for good; add --yes to confirm\n", fs.Arg(0))
		return exitUsage
	}
	opts, err := cfg.EngineOptions()
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd keys:", err)
		return exitUsage
	}
	eng, err := engine.Open(cfg.Data, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd: open store %s: %v (is a daemon serving it?)\n", cfg.Data, err)
		return exitError
	}
	name := fs.Arg(0)
	if action, ok := keyActions[sub]; ok {
		if err := recordLocal(ctx, eng, localChange{command: "keys " + sub, action: action, resource: eng.KeyARN(name)}); err != nil {
			fmt.Fprintf(env.Stderr, "registryd keys %s: %v\n", sub, err)
			return closeStore(env, eng, exitError)
		}
	}
	switch sub {
	case "list":
		var keys []engine.KeyStatus
		keys, err = eng.Keys(ctx)
		if keys != nil {
			if asJSON {
				if perr := printJSON(env, keys); err == nil {
					err = perr
				}
			} else {
				printKeys(env, keys)
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
	code := exitOK
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd keys %s: %v\n", sub, err)
		code = exitError
	}
	return closeStore(env, eng, code)
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
