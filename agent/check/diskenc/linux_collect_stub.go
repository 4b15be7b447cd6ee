package diskenc

import (
	"context"

	"github.com/wardhq/ward/agent/check"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// collectLinux is a placeholder until the Linux collector lands; it reports
// that it could not tell, never a good state.
func collectLinux(_ context.Context, _ check.Source) *wardv1.DiskEncryptionFacts {
	return &wardv1.DiskEncryptionFacts{Collection: check.Failed("linux collector not built yet")}
}
