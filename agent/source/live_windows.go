package source

import (
	"context"
	"fmt"

	"github.com/wardhq/ward/agent/check"
)

func allowedTools() map[string][]string {
	return map[string][]string{
		"powershell": {`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`},
	}
}

func commandEnv() []string { return nil }

// Registry implements check.Source. (The Windows helper replaces this.)
func (l *Live) Registry(context.Context, string, string) (check.RegistryValue, error) {
	return check.RegistryValue{}, fmt.Errorf("registry: %w", check.ErrUnsupported)
}

// WMI implements check.Source. (The Windows helper replaces this.)
func (l *Live) WMI(context.Context, string, string) ([]map[string]any, error) {
	return nil, fmt.Errorf("wmi: %w", check.ErrUnsupported)
}

// Nftables implements check.Source; Windows has no nftables.
func (l *Live) Nftables(context.Context) (check.NftRuleset, error) {
	return check.NftRuleset{}, fmt.Errorf("nftables: %w", check.ErrUnsupported)
}
