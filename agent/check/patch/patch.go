package patch

import (
	"context"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Collect gathers the patch-level facts of the platform src reads from. osf is
// the OS collected first: the distribution decides the package manager. It
// never fails: what it cannot tell is left unset and explained in the
// returned Collection.
func Collect(ctx context.Context, src check.Source, osf *wardv1.OSFacts) *wardv1.PatchFacts {
	platform := osf.GetPlatform()
	switch platform {
	case "linux":
		return collectLinux(ctx, src, osf)
	case "darwin":
		return collectDarwin(ctx, src, osf)
	case "windows":
		return collectWindows(ctx, src, osf)
	}
	return &wardv1.PatchFacts{Collection: check.UnsupportedText([]texts.Text{check.NoCollector(platform)},
		"no patch-level collector for platform %q", platform)}
}
