package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/admin"
	"github.com/berthstore/berth/registryd/internal/adminsock"
)

// openStore parses the flags of a command that needs the store itself in
// this process (mount) and opens the store, which no daemon may hold at
// the same time: when one answers on the store's admin socket, it says
// how to reach that daemon instead.
func openStore(env Env, fs *flag.FlagSet, args []string, extra func(*flag.FlagSet, *Config)) (*engine.Engine, *Config, int) {
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
	if path, ok := adminSocketPath(cfg); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := adminsock.Dial(ctx, path)
		cancel()
		if err == nil {
			c.Close()
			fmt.Fprintf(env.Stderr, "registryd: the store %s is served by the daemon answering on %s: only it may open the store (its view is mounted by serve --mount DIR)\n", cfg.Data, path)
			return nil, nil, exitError
		}
	}
	opts, err := cfg.EngineOptions()
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd:", err)
		return nil, nil, exitUsage
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
	Summary: "create, list, describe or delete repositories (live, or on a stopped store)",
	Run:     runRepo,
}

func runRepo(ctx context.Context, env Env, args []string) int {
	const synopsis = "repo create|list|describe|delete [flags] [NAME]"
	if code, done := subcommandUsage(env, args, "repo", synopsis, true); done {
		return code
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
	t, code := parseTarget(env, fs, args, extra)
	if t == nil {
		return code
	}
	if want := map[bool]int{true: 0, false: 1}[sub == "list"]; fs.NArg() != want {
		if want == 0 {
			fmt.Fprintf(env.Stderr, "registryd repo %s: unexpected argument %q\n", sub, fs.Arg(0))
		} else {
			fmt.Fprintf(env.Stderr, "registryd repo %s: want one NAME\n", sub)
		}
		return exitUsage
	}
	if code := t.open(ctx, env, fs, nil); code != exitOK {
		return code
	}
	settings.TagMutabilityExclusions = exclusionFilters(exclusions)
	var err error
	if t.daemon != nil {
		err = repoLive(ctx, env, t.daemon, sub, fs.Arg(0), settings, force)
	} else {
		err = repoDirect(ctx, env, t.eng, sub, fs.Arg(0), settings, force)
	}
	code = exitOK
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd repo %s: %v\n", sub, err)
		code = exitError
	}
	return t.close(env, code)
}

// repoDirect runs a repo subcommand on the store itself.
func repoDirect(ctx context.Context, env Env, eng *engine.Engine, sub, name string, settings engine.RepositorySettings, force bool) error {
	switch sub {
	case "create":
		err := recordLocal(ctx, eng, localChange{command: "repo create", action: "ecr:CreateRepository",
			resource: eng.RepositoryARN(name), repository: name})
		if err != nil {
			return err
		}
		r, err := eng.CreateRepository(ctx, name, settings)
		if err != nil {
			return err
		}
		return printJSON(env, r)
	case "list":
		// Local: the operator's view of the whole store, not a caller's.
		names, err := eng.ListRepositories(ctx, "", 0)
		if err != nil {
			return err
		}
		return printLines(env, names)
	case "describe":
		r, err := eng.Repository(ctx, name)
		if err != nil {
			return err
		}
		return printJSON(env, r)
	}
	err := recordLocal(ctx, eng, localChange{command: "repo delete", action: "ecr:DeleteRepository",
		resource: eng.RepositoryARN(name), repository: name, parameters: map[string]string{"force": strconv.FormatBool(force)}})
	if err != nil {
		return err
	}
	return eng.DeleteRepository(ctx, name, force)
}

// repoLive runs a repo subcommand through the daemon's admin API.
func repoLive(ctx context.Context, env Env, d *daemon, sub, name string, settings engine.RepositorySettings, force bool) error {
	q := url.Values{admin.RepositoryParam: {name}}
	switch sub {
	case "create":
		body, err := json.Marshal(settings)
		if err != nil {
			return err
		}
		var r engine.Repository
		if err := d.call(ctx, http.MethodPost, "repositories/create", q, body, &r); err != nil {
			return err
		}
		return printJSON(env, &r)
	case "list":
		var names []string
		if err := d.call(ctx, http.MethodGet, "repositories", nil, nil, &names); err != nil {
			return err
		}
		return printLines(env, names)
	case "describe":
		var r engine.Repository
		if err := d.call(ctx, http.MethodGet, "repositories/describe", q, nil, &r); err != nil {
			return err
		}
		return printJSON(env, &r)
	}
	q.Set("force", strconv.FormatBool(force))
	var out struct{}
	return d.call(ctx, http.MethodPost, "repositories/delete", q, nil, &out)
}

// printLines prints one line each.
func printLines(env Env, lines []string) error {
	for _, l := range lines {
		if _, err := fmt.Fprintln(env.Stdout, l); err != nil {
			return err
		}
	}
	return nil
}

var templateCommand = &Command{
	Name:    "template",
	Summary: "put, list or delete repository creation templates (live, or on a stopped store)",
	Run:     runTemplate,
}

func runTemplate(ctx context.Context, env Env, args []string) int {
	const synopsis = "template put|list|delete [flags] [PREFIX]"
	if code, done := subcommandUsage(env, args, "template", synopsis, true); done {
		return code
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
	tg, code := parseTarget(env, fs, args, extra)
	if tg == nil {
		return code
	}
	switch {
	case sub == "put" && asJSON != "":
		var ft Template
		dec := json.NewDecoder(strings.NewReader(asJSON))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ft); err != nil {
			fmt.Fprintln(env.Stderr, "registryd template put: --json:", err)
			return exitUsage
		}
		t = ft.engineTemplate()
	case sub == "list" && fs.NArg() != 0:
		fmt.Fprintf(env.Stderr, "registryd template list: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case sub != "list" && fs.NArg() != 1:
		fmt.Fprintf(env.Stderr, "registryd template %s: want one PREFIX\n", sub)
		return exitUsage
	case sub == "put":
		t.Prefix = fs.Arg(0)
		t.AppliedFor = strings.Split(appliedFor, ",")
		t.TagMutabilityExclusions = exclusionFilters(exclusions)
	}
	if code := tg.open(ctx, env, fs, nil); code != exitOK {
		return code
	}
	var err error
	if tg.daemon != nil {
		err = templateLive(ctx, env, tg.daemon, sub, fs.Arg(0), t)
	} else {
		err = templateDirect(ctx, env, tg.eng, sub, fs.Arg(0), t)
	}
	code = exitOK
	if err != nil {
		fmt.Fprintf(env.Stderr, "registryd template %s: %v\n", sub, err)
		code = exitError
	}
	return tg.close(env, code)
}

// templateDirect runs a template subcommand on the store itself.
func templateDirect(ctx context.Context, env Env, eng *engine.Engine, sub, prefix string, t engine.CreationTemplate) error {
	switch sub {
	case "put":
		if err := recordTemplatePut(ctx, eng, "template put", t.Prefix); err != nil {
			return err
		}
		return eng.PutCreationTemplate(ctx, t)
	case "list":
		ts, err := eng.CreationTemplates(ctx)
		if err != nil {
			return err
		}
		return printTemplates(env, ts)
	}
	err := recordLocal(ctx, eng, localChange{command: "template delete", action: "ecr:DeleteRepositoryCreationTemplate",
		resource: "*", parameters: map[string]string{"prefix": prefix}})
	if err != nil {
		return err
	}
	return eng.DeleteCreationTemplate(ctx, prefix)
}

// templateLive runs a template subcommand through the daemon's admin API.
func templateLive(ctx context.Context, env Env, d *daemon, sub, prefix string, t engine.CreationTemplate) error {
	var out struct{}
	switch sub {
	case "put":
		body, err := json.Marshal(t)
		if err != nil {
			return err
		}
		return d.call(ctx, http.MethodPost, "templates/put", nil, body, &out)
	case "list":
		var ts []engine.CreationTemplate
		if err := d.call(ctx, http.MethodGet, "templates", nil, nil, &ts); err != nil {
			return err
		}
		return printTemplates(env, ts)
	}
	return d.call(ctx, http.MethodPost, "templates/delete", url.Values{admin.TemplatePrefixParam: {prefix}}, nil, &out)
}

// printTemplates prints templates as `template list` does.
func printTemplates(env Env, ts []engine.CreationTemplate) error {
	list := make([]storedTemplate, len(ts))
	for i, t := range ts {
		list[i] = storedTemplateOf(t)
	}
	return printJSON(env, list)
}
