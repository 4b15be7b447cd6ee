//go:build !linux && !darwin && !windows

package source

import (
	"context"
	"fmt"

	"github.com/wardhq/ward/agent/check"
)

func allowedTools() map[string][]string { return map[string][]string{} }

func commandEnv() []string { return []string{"LC_ALL=C", "LANG=C"} }

// Registry implements check.Source.
func (l *Live) Registry(context.Context, string, string) (check.RegistryValue, error) {
	return check.RegistryValue{}, fmt.Errorf("registry: %w", check.ErrUnsupported)
}

// WMI implements check.Source.
func (l *Live) WMI(context.Context, string, string) ([]map[string]any, error) {
	return nil, fmt.Errorf("wmi: %w", check.ErrUnsupported)
}

// Nftables implements check.Source.
func (l *Live) Nftables(context.Context) (check.NftRuleset, error) {
	return check.NftRuleset{}, fmt.Errorf("nftables: %w", check.ErrUnsupported)
}
