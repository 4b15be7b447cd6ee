// Package collect runs every check family against a Source and assembles
// the device's Facts.
package collect

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/diskenc"
	"github.com/wardhq/ward/agent/check/firewall"
	"github.com/wardhq/ward/agent/check/osinfo"
	"github.com/wardhq/ward/agent/check/patch"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// All collects the OS facts first (the patch collector needs the
// distribution), then the three families concurrently. It never fails: a
// family that cannot be collected says so in its Collection.
func All(ctx context.Context, src check.Source, now time.Time) *wardv1.Facts {
	facts := &wardv1.Facts{CollectedAt: timestamppb.New(now)}
	host, err := src.Host(ctx)
	if err != nil {
		facts.Os = &wardv1.OSFacts{Collection: check.FailedText([]texts.Text{check.NoCollector(""), check.ErrText("", err)},
			"cannot tell which platform this is: %v", err)}
		host = check.Host{}
	} else {
		facts.Os = osinfo.Collect(ctx, src, host.OS)
		if facts.Os.Platform == "" {
			facts.Os.Platform = host.OS
		}
		if facts.Os.Architecture == "" {
			facts.Os.Architecture = host.Arch
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { facts.DiskEncryption = diskenc.Collect(ctx, src, host.OS) })
	wg.Go(func() { facts.PatchLevel = patch.Collect(ctx, src, facts.Os) })
	wg.Go(func() { facts.Firewall = firewall.Collect(ctx, src, host.OS) })
	wg.Wait()
	return facts
}

// Trims are how a support bundle keeps, of the inputs the collectors
// read, only the part they use (see check.Trim): today the package
// histories of the patch collectors.
func Trims() []check.Trim { return patch.Trims() }
