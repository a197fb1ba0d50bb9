package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

var htpasswdCommand = &Command{
	Name:    "htpasswd",
	Summary: "print an htpasswd line (bcrypt) for USER, the password read from stdin",
	Run:     runHtpasswd,
}

func runHtpasswd(ctx context.Context, env Env, args []string) int {
	fs := flagSetFor(env, args, "htpasswd", "htpasswd [flags] USER  < password")
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 1 || strings.ContainsRune(fs.Arg(0), ':') {
		fmt.Fprintln(env.Stderr, "registryd htpasswd: want one USER (without ':')")
		return exitUsage
	}
	sc := bufio.NewScanner(env.Stdin)
	if !sc.Scan() {
		fmt.Fprintln(env.Stderr, "registryd htpasswd: no password on stdin")
		return exitUsage
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(strings.TrimRight(sc.Text(), "\r")), *cost)
	if err != nil {
		fmt.Fprintln(env.Stderr, "registryd htpasswd:", err)
		return exitError
	}
	fmt.Fprintf(env.Stdout, "%s:%s\n", fs.Arg(0), hash)
	return exitOK
}
