package patch

import (
	"context"

	"github.com/wardhq/ward/agent/check"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// collectWindows is a placeholder until the Windows collector lands; it reports
// that it could not tell, never a good state.
func collectWindows(_ context.Context, _ check.Source, _ *wardv1.OSFacts) *wardv1.PatchFacts {
	return &wardv1.PatchFacts{Collection: check.Failed("windows collector not built yet")}
}
