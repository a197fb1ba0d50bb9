// Command registryd is the Berth container registry daemon. See
// docs/registryd.md; the commands live in package cli.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/berthstore/berth/registryd/cli"
)

func main() {
	// Every command (serve, mount, gc, fsck, ...) starts under the
	// default soft memory limit: derived from the cgroup's memory limit,
	// none without one; GOMEMLIMIT wins. serve's memoryLimit changes it.
	mem, err := cli.DecideMemoryLimit(cli.MemoryLimitAuto)
	mem.Apply()
	if err != nil {
		fmt.Fprintln(os.Stderr, "registryd: no soft memory limit:", err)
	}
	os.Exit(cli.Main(context.Background(), cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}
