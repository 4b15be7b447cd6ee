package cli

import "github.com/spf13/cobra"

// feedSubcommands are the subcommands of "ward-collector feed"
// (docs/feed.md): each file that adds one appends its constructor in an
// init function, so build, import and show live in files of their own.
var feedSubcommands []func(a *app) *cobra.Command

func (a *app) feedCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "feed", Short: "Build, import and show the signed release feed \"up to date\" is judged by (docs/feed.md)"}
	for _, sub := range feedSubcommands {
		cmd.AddCommand(sub(a))
	}
	return cmd
}
