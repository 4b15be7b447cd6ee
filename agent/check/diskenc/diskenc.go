package diskenc

import (
	"context"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Collect gathers the disk-encryption facts of the platform src reads from.
// It never fails: what it cannot tell is left unset and explained in the
// returned Collection.
func Collect(ctx context.Context, src check.Source, platform string) *wardv1.DiskEncryptionFacts {
	switch platform {
	case "linux":
		return collectLinux(ctx, src)
	case "darwin":
		return collectDarwin(ctx, src)
	case "windows":
		return collectWindows(ctx, src)
	}
	return &wardv1.DiskEncryptionFacts{Collection: check.UnsupportedText([]texts.Text{check.NoCollector(platform)},
		"no disk-encryption collector for platform %q", platform)}
}
