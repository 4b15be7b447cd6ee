package cli

import (
	"github.com/spf13/pflag"

	"github.com/wardhq/ward/collector/server"
)

// grpcFlags adds serve's flags for the gRPC front.
func grpcFlags(f *pflag.FlagSet, o *server.GRPCOptions) {}
