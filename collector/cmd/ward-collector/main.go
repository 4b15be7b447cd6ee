// Command ward-collector runs Ward's collector and its admin commands.
package main

import (
	"context"
	"os"

	"github.com/wardhq/ward/collector/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
