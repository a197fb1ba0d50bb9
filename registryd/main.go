// Command registryd is the Berth container registry daemon. See
// docs/registryd.md; the commands live in package cli.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/berthstore/berth/registryd/cli"
)

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// Every command (serve, mount, gc, fsck, ...) starts under the
		// default soft memory limit; serve's --memory-limit changes it.
		debug.SetMemoryLimit(cli.DefaultConfig().MemoryLimit)
	}
	os.Exit(cli.Main(context.Background(), cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}
