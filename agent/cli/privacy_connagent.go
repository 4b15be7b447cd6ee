package cli

import (
	"fmt"
	"io"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// renderConnectivity says what a report tells about the device's
// connection (docs/connectivity.md), and, when the update source was
// probed, that Ward contacted it: nothing on none (an older report).
func renderConnectivity(w io.Writer, t func(string, ...string) string, c *wardv1.Connectivity) {
	switch {
	case c == nil:
	case c.GetUpdateSourceName() != "":
		fmt.Fprintln(w, t("privacy.connectivity_probe", "source", c.GetUpdateSourceName()))
	default:
		fmt.Fprintln(w, t("privacy.connectivity"))
	}
}
