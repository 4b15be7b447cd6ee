package source

import (
	"context"
	"fmt"

	"github.com/wardhq/ward/agent/check"
)

// Nftables implements check.Source. (The Linux helper replaces this with a
// netlink reader.)
func (l *Live) Nftables(context.Context) (check.NftRuleset, error) {
	return check.NftRuleset{}, fmt.Errorf("nftables: %w", check.ErrUnsupported)
}
