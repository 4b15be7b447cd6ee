package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
)

func (a *app) bundleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "bundle OUT.tar.gz",
		Short: "Record every raw input the checks read into a support bundle",
		Long: `bundle runs every collector on this machine and records each raw input it
read (commands with argv, exit code, stdout and stderr; files; registry
values; WMI rows; the nftables ruleset) with platform info and a manifest.
Replay it anywhere with: ward-agent check --replay OUT.tar.gz

The bundle holds what the checks read and nothing else: of the package
histories (apt's history.log, dpkg.log, zypper's and pacman's logs, rpm
--last, macOS InstallHistory.plist) only the newest install or upgrade the
checks date, without package names or who asked. Look inside with tar -tzf
before sending it.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[0]
			ctx := cmd.Context()
			rec, err := source.NewRecorder(ctx, a.newSource(), collect.Trims()...)
			if err != nil {
				return fmt.Errorf("start recording: %w", err)
			}
			now := time.Now().UTC()
			collect.All(ctx, rec, now)
			host, _ := rec.Host(ctx)
			m := source.Manifest{CreatedAt: now, AgentVersion: a.version, Host: host,
				Note: "recorded by ward-agent bundle"}
			tmp, err := os.CreateTemp(filepath.Dir(out), ".ward-bundle-*")
			if err != nil {
				return usagef("bundle: %v", err)
			}
			defer os.Remove(tmp.Name())
			if err := source.WriteBundle(tmp, m, rec.Recorded()); err != nil {
				tmp.Close()
				return fmt.Errorf("write bundle: %w", err)
			}
			if err := tmp.Sync(); err != nil {
				tmp.Close()
				return fmt.Errorf("write bundle: %w", err)
			}
			if err := tmp.Close(); err != nil {
				return fmt.Errorf("write bundle: %w", err)
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return fmt.Errorf("write bundle: %w", err)
			}
			fmt.Fprintf(a.stdout, "wrote %s: %d records from %s/%s\n", out, len(rec.Recorded().Records()), host.OS, host.Arch)
			return nil
		},
	}
}
