// Command ward-agent checks this laptop's disk encryption, patch level and
// firewall against a Ward policy. See `ward-agent help`.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/wardhq/ward/agent/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Main(ctx, version, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
