package firewall

import (
	"context"

	"github.com/wardhq/ward/agent/check"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// collectWindows is a placeholder until the Windows collector lands; it reports
// that it could not tell, never a good state.
func collectWindows(_ context.Context, _ check.Source) *wardv1.FirewallFacts {
	return &wardv1.FirewallFacts{Collection: check.Failed("windows collector not built yet")}
}
