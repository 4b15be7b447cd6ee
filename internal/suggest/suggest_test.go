package suggest

import (
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"json", "json", 0}, {"jsn", "json", 1}, {"summry", "summary", 1}, {"as-off", "as-of", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestFlagAndCommand(t *testing.T) {
	root := &cobra.Command{Use: "x"}
	root.PersistentFlags().String("data", "", "")
	sub := &cobra.Command{Use: "summary", Run: func(*cobra.Command, []string) {}}
	sub.Flags().Bool("json", false, "")
	sub.Flags().String("interval", "", "")
	root.AddCommand(sub)
	for _, tc := range []struct{ in, want string }{
		{"unknown flag: --jsn", "unknown flag: --jsn; did you mean --json?"},
		{"unknown flag: --dat", "unknown flag: --dat; did you mean --data?"},
		{"unknown flag: --inter", "unknown flag: --inter; did you mean --interval?"},
		{"unknown flag: --zzzzzz", "unknown flag: --zzzzzz"},
		{"invalid argument \"x\" for \"--json\"", "invalid argument \"x\" for \"--json\""},
	} {
		in := errors.New(tc.in)
		got := Flag(sub, in)
		if got.Error() != tc.want || !errors.Is(got, in) {
			t.Errorf("Flag(%q) = %q, want %q (wrapping the original)", tc.in, got, tc.want)
		}
	}
	if got := Command(root, "sumary"); got != "; did you mean summary?" {
		t.Errorf("Command(sumary) = %q", got)
	}
	if got := Command(root, "export"); got != "" {
		t.Errorf("Command(export) = %q, want none", got)
	}
}
