// Command registryd is the Berth container registry daemon. See
// docs/registryd.md; the commands live in package cli.
package main

import (
	"context"
	"os"

	"github.com/berthstore/berth/registryd/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}
