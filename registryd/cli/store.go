package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/berthstore/berth/engine"
)

// storeFlags parses the flags of a store subcommand (repo, template) and
// opens the store, which no daemon may hold at the same time.
func openStore(env Env, fs *flag.FlagSet, args []string, extra func(*flag.FlagSet, *Config)) (*engine.Engine, *Config, int) {
	return openStoreWith(env, fs, args, extra, nil)
}

// openStoreWith is openStore with tune, if not nil, given the engine
// options (after the flags are parsed) before the store opens; an error
// from it is a usage error.
func openStoreWith(env Env, fs *flag.FlagSet, args []string, extra func(*flag.FlagSet, *Config), tune func(*engine.Options) error) (*engine.Engine, *Config, int) {
	cfg, err := parseFlags(fs, args, func(fs *flag.FlagSet, c *Config) {
		bindStoreFlags(fs, c)
		if extra != nil {
			extra(fs, c)
		}
	})
	if err != nil {
		if errors.Is(err, ErrConfig) {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return nil, nil, exitUsage
		}
		return nil, nil, flagExit(err)
	}
	opts, err := cfg.EngineOptions()
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return nil, nil, exitUsage
	}
	if tune != nil {
		if err := tune(opts); err != nil {
			fmt.Fprintln(env.Stderr, "registryd:", err)
			return nil, nil, exitUsage
		}
	}
	eng, err := engine.Open(cfg.Data, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd: open store %s: %v (is a daemon serving it?)\n", cfg.Data, err)
		return nil, nil, exitError
	}
	return eng, cfg, exitOK
}

// closeStore closes eng and folds its error into code.
func closeStore(env Env, eng *engine.Engine, code int) int {
	if err := eng.Close(); err != nil {
		fmt.Fprintln(env.Stderr, "registryd: close store:", err)
		if code == exitOK {
			return exitError
		}
	}
	return code
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// settingsFlags binds the repository settings flags shared by repo
// create and template put.
func settingsFlags(fs *flag.FlagSet, s *engine.RepositorySettings, exclusions *stringList) {
	fs.StringVar(&s.TagMutability, "mutability", "", "tag mutability: MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION")
	fs.Var(exclusions, "exclusion", "tag mutability exclusion filter (wildcard), repeatable")
	fs.BoolVar(&s.ScanOnPush, "scan-on-push", false, "scan images on push")
	fs.StringVar(&s.Encryption.EncryptionType, "encryption", "", "encryption type: AES256, KMS, KMS_DSSE (default AES256)")
	fs.StringVar(&s.Encryption.KMSKey, "kms-key", "", "key-encryption key name or pkcs11: URI")
	fs.StringVar(&s.LifecyclePolicy, "lifecycle-policy", "", "ECR lifecycle policy JSON")
}

// exclusionFilters turns --exclusion values into filters.
func exclusionFilters(vs []string) []engine.TagFilter {
	var out []engine.TagFilter
	for _, v := range vs {
		out = append(out, engine.TagFilter{Filter: v, FilterType: "WILDCARD"})
	}
	return out
}

// printJSON writes v indented.
func printJSON(env Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var repoCommand = &Command{
	Name:    "repo",
	Summary: "create, list or delete repositories of a store no daemon holds",
	Run:     runRepo,
}

func runRepo(ctx context.Context, env Env, args []string) int {
	const synopsis = "repo create|list|describe|delete [flags] [NAME]"
	if len(args) == 0 || helpRequested(args[:1]) {
		fs := flagSetFor(env, args, "repo", synopsis)
		bindStoreFlags(fs, &Config{})
		fs.Usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[0], args[1:]
	var (
		settings   engine.RepositorySettings
		exclusions stringList
		force      bool
	)
	var synopsisSub string
	var extra func(*flag.FlagSet, *Config)
	switch sub {
	case "create":
		synopsisSub = "repo create [flags] NAME"
		extra = func(fs *flag.FlagSet, _ *Config) { settingsFlags(fs, &settings, &exclusions) }
	case "list":
		synopsisSub = "repo list [flags]"
	case "describe":
		synopsisSub = "repo describe [flags] NAME   (settings, key state, whether it is public)"
	case "delete":
		synopsisSub = "repo delete [flags] NAME"
		extra = func(fs *flag.FlagSet, _ *Config) {
			fs.BoolVar(&force, "force", false, "delete the repository's images too")
		}
	default:
		fmt.Fprintf(env.Stderr, "registryd repo: unknown subcommand %q (want create, list, describe or delete)\n", sub)
		return exitUsage
	}
	fs := flagSetFor(env, args, "repo "+sub, synopsisSub)
	eng, _, code := openStore(env, fs, args, extra)
	if eng == nil {
		return code
	}
	code = exitOK
	var err error
	switch sub {
	case "create":
		if fs.NArg() != 1 {
			fmt.Fprintln(env.Stderr, "registryd repo create: want one NAME")
			return closeStore(env, eng, exitUsage)
		}
		settings.TagMutabilityExclusions = exclusionFilters(exclusions)
		name := fs.Arg(0)
		var r *engine.Repository
		err = recordLocal(ctx, eng, localChange{command: "repo create", action: "ecr:CreateRepository",
			resource: eng.RepositoryARN(name), repository: name})
		if err == nil {
			if r, err = eng.CreateRepository(ctx, name, settings); err == nil {
				err = printJSON(env, r)
			}
		}
	case "list":
		// Local: the operator's view of the whole store, not a caller's.
		var names []string
		if names, err = eng.ListRepositories(ctx, "", 0); err == nil {
			for _, n := range names {
				fmt.Fprintln(env.Stdout, n)
			}
		}
	case "describe":
		if fs.NArg() != 1 {
			fmt.Fprintln(env.Stderr, "registryd repo describe: want one NAME")
			return closeStore(env, eng, exitUsage)
		}
		var r *engine.Repository
		if r, err = eng.Repository(ctx, fs.Arg(0)); err == nil {
			err = printJSON(env, r)
		}
	case "delete":
		if fs.NArg() != 1 {
			fmt.Fprintln(env.Stderr, "registryd repo delete: want one NAME")
			return closeStore(env, eng, exitUsage)
		}
		name := fs.Arg(0)
		err = recordLocal(ctx, eng, localChange{command: "repo delete", action: "ecr:DeleteRepository",
			resource: eng.RepositoryARN(name), repository: name, parameters: map[string]string{"force": strconv.FormatBool(force)}})
		if err == nil {
			err = eng.DeleteRepository(ctx, name, force)
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd repo %s: %v\n", sub, err)
		code = exitError
	}
	return closeStore(env, eng, code)
}

var templateCommand = &Command{
	Name:    "template",
	Summary: "put, list or delete repository creation templates of a store no daemon holds",
	Run:     runTemplate,
}

func runTemplate(ctx context.Context, env Env, args []string) int {
	const synopsis = "template put|list|delete [flags] [PREFIX]"
	if len(args) == 0 || helpRequested(args[:1]) {
		fs := flagSetFor(env, args, "template", synopsis)
		bindStoreFlags(fs, &Config{})
		fs.Usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[0], args[1:]
	var (
		t          engine.CreationTemplate
		exclusions stringList
		appliedFor string
		asJSON     string
	)
	// --json is the whole template in the configuration file's schema.
	var synopsisSub string
	var extra func(*flag.FlagSet, *Config)
	switch sub {
	case "put":
		synopsisSub = "template put [flags] PREFIX   (PREFIX ROOT matches every repository no other template matches)"
		extra = func(fs *flag.FlagSet, _ *Config) {
			settingsFlags(fs, &t.RepositorySettings, &exclusions)
			fs.StringVar(&t.Description, "description", "", "description")
			fs.StringVar(&appliedFor, "applied-for", engine.AppliedForCreateOnPush, "comma-separated scenarios: CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION")
			fs.StringVar(&asJSON, "json", "", "the whole template as JSON (ECR field names) instead of the flags")
		}
	case "list":
		synopsisSub = "template list [flags]"
	case "delete":
		synopsisSub = "template delete [flags] PREFIX"
	default:
		fmt.Fprintf(env.Stderr, "registryd template: unknown subcommand %q (want put, list or delete)\n", sub)
		return exitUsage
	}
	fs := flagSetFor(env, args, "template "+sub, synopsisSub)
	eng, _, code := openStore(env, fs, args, extra)
	if eng == nil {
		return code
	}
	code = exitOK
	var err error
	switch sub {
	case "put":
		if asJSON != "" {
			var ft Template
			if err = json.Unmarshal([]byte(asJSON), &ft); err != nil {
				fmt.Fprintln(env.Stderr, "registryd template put: --json:", err)
				return closeStore(env, eng, exitUsage)
			}
			t = ft.engineTemplate()
		} else {
			if fs.NArg() != 1 {
				fmt.Fprintln(env.Stderr, "registryd template put: want one PREFIX")
				return closeStore(env, eng, exitUsage)
			}
			t.Prefix = fs.Arg(0)
			t.AppliedFor = strings.Split(appliedFor, ",")
			t.TagMutabilityExclusions = exclusionFilters(exclusions)
		}
		if err = recordTemplatePut(ctx, eng, "template put", t.Prefix); err == nil {
			err = eng.PutCreationTemplate(ctx, t)
		}
	case "list":
		var ts []engine.CreationTemplate
		if ts, err = eng.CreationTemplates(ctx); err == nil {
			list := make([]storedTemplate, len(ts))
			for i, t := range ts {
				list[i] = storedTemplateOf(t)
			}
			err = printJSON(env, list)
		}
	case "delete":
		if fs.NArg() != 1 {
			fmt.Fprintln(env.Stderr, "registryd template delete: want one PREFIX")
			return closeStore(env, eng, exitUsage)
		}
		err = recordLocal(ctx, eng, localChange{command: "template delete", action: "ecr:DeleteRepositoryCreationTemplate",
			resource: "*", parameters: map[string]string{"prefix": fs.Arg(0)}})
		if err == nil {
			err = eng.DeleteCreationTemplate(ctx, fs.Arg(0))
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd template %s: %v\n", sub, err)
		code = exitError
	}
	return closeStore(env, eng, code)
}
