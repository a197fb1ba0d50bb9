// Package cli is registryd's command line: a table of subcommands
// (serve, repo, template, htpasswd; mount, gc, lifecycle, fsck and keys
// register themselves later with Register), each with its own flag set.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Env is what a command reads and writes.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Command is one subcommand.
type Command struct {
	// Name is the word that selects it.
	Name string
	// Summary is one line for the top-level help.
	Summary string
	// Run executes the command with the arguments after its name and
	// returns the process exit code.
	Run func(ctx context.Context, env Env, args []string) int
}

var commands = map[string]*Command{}

// Register adds a subcommand. It is meant for init functions; a second
// command with the same name replaces the first.
func Register(c *Command) { commands[c.Name] = c }

func init() {
	Register(serveCommand)
	Register(repoCommand)
	Register(templateCommand)
	Register(htpasswdCommand)
}

// defaultCommand runs when no subcommand is named.
const defaultCommand = "serve"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// Main runs the command line args (without the program name) and returns
// the exit code.
func Main(ctx context.Context, env Env, args []string) int {
	name := defaultCommand
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "help" || a == "-h" || a == "-help" || a == "--help":
			if len(args) > 1 {
				if c, ok := commands[args[1]]; ok {
					return c.Run(ctx, env, []string{"-h"})
				}
			}
			usage(env.Stdout)
			return exitOK
		case !strings.HasPrefix(a, "-"):
			name, args = a, args[1:]
		}
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(env.Stderr, "registryd: unknown command %q\n\n", name)
		usage(env.Stderr)
		return exitUsage
	}
	return c.Run(ctx, env, args)
}

// usage prints the top-level help.
func usage(w io.Writer) {
	fmt.Fprintln(w, "registryd: the Berth container registry daemon")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: registryd [command] [flags]   (the default command is serve)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "registryd <command> --help" for the flags of a command. The serve flags:`)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(w)
	c := DefaultConfig()
	var ignored string
	fs.StringVar(&ignored, "config", "", "configuration file (YAML or JSON); flags override it")
	bindServeFlags(fs, &c)
	fs.PrintDefaults()
}

// newFlagSet returns a flag set that prints its usage to env.Stderr, or
// to env.Stdout when help was asked for.
func newFlagSet(env Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: registryd %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// flagExit turns a flag parsing error into an exit code: help is a
// success, anything else a usage error.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// helpRequested reports whether args ask for help, so that the usage is
// printed to stdout.
// subcommandUsage answers a command of subcommands called with none, or
// with help asked before one: it prints the usage (with the store flags
// when storeFlags) and returns exitUsage without a subcommand, exitOK for
// help. done is false when there is a subcommand to run.
func subcommandUsage(env Env, args []string, name, synopsis string, storeFlags bool) (code int, done bool) {
	if len(args) > 0 && !helpRequested(args[:1]) {
		return 0, false
	}
	fs := flagSetFor(env, args, name, synopsis)
	if storeFlags {
		bindStoreFlags(fs, &Config{})
	}
	fs.Usage()
	if len(args) == 0 {
		return exitUsage, true
	}
	return exitOK, true
}

func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

// flagSetFor is newFlagSet with the output on stdout for --help.
func flagSetFor(env Env, args []string, name, synopsis string) *flag.FlagSet {
	fs := newFlagSet(env, name, synopsis)
	if helpRequested(args) {
		fs.SetOutput(env.Stdout)
	}
	return fs
}
