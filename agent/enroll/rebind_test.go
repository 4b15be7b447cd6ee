package enroll_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/collector/server/servertest"
)

// TestEnrollAgainProvesTheIdentity: enrolling again over a state dir that
// holds an identity re-binds the same device with a proof of its key; a
// fresh state dir (same machine id) makes a new device, a likely duplicate.
func TestEnrollAgainProvesTheIdentity(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	dir := filepath.Join(t.TempDir(), "state")
	opts := func(dir string) enroll.Options {
		return enroll.Options{Collector: c.Addr, Token: c.Token("field", 1, time.Hour), Fingerprint: c.Fingerprint,
			StateDir: dir, Source: fixtureSource(t), AgentVersion: "1.2.3"}
	}
	first, err := enroll.Enroll(ctx, opts(dir))
	if err != nil {
		t.Fatal(err)
	}
	again, err := enroll.Enroll(ctx, opts(dir))
	if err != nil {
		t.Fatal(err)
	}
	if again.DeviceID != first.DeviceID {
		t.Fatalf("enrolling again over the state dir made device %s, want %s", again.DeviceID, first.DeviceID)
	}
	if r, _ := c.Store().SerialRevoked(ctx, first.Cert.Leaf.SerialNumber.Text(16)); !r {
		t.Error("the previous certificate was not revoked")
	}
	fresh, err := enroll.Enroll(ctx, opts(filepath.Join(t.TempDir(), "fresh")))
	if err != nil {
		t.Fatal(err)
	}
	if fresh.DeviceID == first.DeviceID {
		t.Fatal("a fresh state dir re-bound the device by machine id")
	}
	sets, err := c.Store().Duplicates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 1 || len(sets[0].Devices) != 2 {
		t.Errorf("duplicates = %+v, want the two devices of this machine", sets)
	}
}
