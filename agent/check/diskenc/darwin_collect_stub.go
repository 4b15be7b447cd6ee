package diskenc

import (
	"context"

	"github.com/wardhq/ward/agent/check"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// collectDarwin is a placeholder until the Darwin collector lands; it reports
// that it could not tell, never a good state.
func collectDarwin(_ context.Context, _ check.Source) *wardv1.DiskEncryptionFacts {
	return &wardv1.DiskEncryptionFacts{Collection: check.Failed("darwin collector not built yet")}
}
