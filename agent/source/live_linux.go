package source

import (
	"context"
	"fmt"
	"os"

	"github.com/wardhq/ward/agent/check"
)

func allowedTools() map[string][]string {
	return map[string][]string{
		"lsblk":                 {"/usr/bin/lsblk", "/bin/lsblk"},
		"apt-get":               {"/usr/bin/apt-get"},
		"apt-config":            {"/usr/bin/apt-config"},
		"dnf":                   {"/usr/bin/dnf", "/usr/bin/dnf5"},
		"rpm":                   {"/usr/bin/rpm", "/bin/rpm"},
		"needs-restarting":      {"/usr/bin/needs-restarting"},
		"zypper":                {"/usr/bin/zypper"},
		"pacman":                {"/usr/bin/pacman"},
		"checkupdates":          {"/usr/bin/checkupdates"},
		"iptables-save":         {"/usr/sbin/iptables-save", "/sbin/iptables-save"},
		"ip6tables-save":        {"/usr/sbin/ip6tables-save", "/sbin/ip6tables-save"},
		"iptables-nft-save":     {"/usr/sbin/iptables-nft-save", "/sbin/iptables-nft-save"},
		"ip6tables-nft-save":    {"/usr/sbin/ip6tables-nft-save", "/sbin/ip6tables-nft-save"},
		"iptables-legacy-save":  {"/usr/sbin/iptables-legacy-save", "/sbin/iptables-legacy-save"},
		"ip6tables-legacy-save": {"/usr/sbin/ip6tables-legacy-save", "/sbin/ip6tables-legacy-save"},
		"ufw":                   {"/usr/sbin/ufw"},
		"firewall-cmd":          {"/usr/bin/firewall-cmd"},
		"systemctl":             {"/usr/bin/systemctl", "/bin/systemctl"},
		"notify-send":           {"/usr/bin/notify-send"},
	}
}

// commandEnv is the environment commands run with: the C locale, so output
// is not translated, and a fixed PATH for tools that call helpers.
func commandEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if v, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+v)
	}
	return env
}

// Registry implements check.Source; Linux has no registry.
func (l *Live) Registry(context.Context, string, string) (check.RegistryValue, error) {
	return check.RegistryValue{}, fmt.Errorf("registry: %w", check.ErrUnsupported)
}

// WMI implements check.Source; Linux has no WMI.
func (l *Live) WMI(context.Context, string, string) ([]map[string]any, error) {
	return nil, fmt.Errorf("wmi: %w", check.ErrUnsupported)
}
