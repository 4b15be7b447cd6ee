package cli

import (
	"github.com/spf13/pflag"

	"github.com/wardhq/ward/collector/server"
)

// httpFlags adds serve's flags for the HTTP server.
func httpFlags(f *pflag.FlagSet, o *server.HTTPOptions) {}
