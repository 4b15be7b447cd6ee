package source

import (
	"context"
	"fmt"

	"github.com/wardhq/ward/agent/check"
)

func allowedTools() map[string][]string {
	return map[string][]string{
		"fdesetup":       {"/usr/bin/fdesetup"},
		"socketfilterfw": {"/usr/libexec/ApplicationFirewall/socketfilterfw"},
		"sw_vers":        {"/usr/bin/sw_vers"},
		"softwareupdate": {"/usr/sbin/softwareupdate"},
		"uname":          {"/usr/bin/uname"},
		"defaults":       {"/usr/bin/defaults"},
		"diskutil":       {"/usr/sbin/diskutil"},
		"sysctl":         {"/usr/sbin/sysctl"},
		"osascript":      {"/usr/bin/osascript"},
		"netstat":        {"/usr/sbin/netstat"},
	}
}

func commandEnv() []string {
	return []string{"LC_ALL=C", "LANG=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
}

// Registry implements check.Source; macOS has no registry.
func (l *Live) Registry(context.Context, string, string) (check.RegistryValue, error) {
	return check.RegistryValue{}, fmt.Errorf("registry: %w", check.ErrUnsupported)
}

// WMI implements check.Source; macOS has no WMI.
func (l *Live) WMI(context.Context, string, string) ([]map[string]any, error) {
	return nil, fmt.Errorf("wmi: %w", check.ErrUnsupported)
}

// Nftables implements check.Source; macOS has no nftables.
func (l *Live) Nftables(context.Context) (check.NftRuleset, error) {
	return check.NftRuleset{}, fmt.Errorf("nftables: %w", check.ErrUnsupported)
}
