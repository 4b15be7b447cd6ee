package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/feedtest"
	"github.com/wardhq/ward/feed/snapshot"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestOversizedFeedIsNotSent: a feed whose signed file is over
// server.MaxSentFeedSize is announced by serial but not sent, so the
// answer stays within what an agent reads and the policy still comes; a
// feed under it is sent.
func TestOversizedFeedIsNotSent(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	_, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := wardv1grpc.NewAgentServiceClient(c.Dial(&cert))
	key, _, err := c.Server().CA().FeedKey(c.DataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	importAs := func(serial uint64, padding int) int {
		t.Helper()
		f := *snap
		gen := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		f.Serial, f.GeneratedAt, f.ExpiresAt = serial, gen, gen.Add(180*24*time.Hour)
		f.Sources = append([]feed.Source(nil), snap.Sources...)
		f.Sources[0].Description += " " + strings.Repeat("x", padding)
		signed := feedtest.SignedFile(t, &f, key)
		srcs, _ := json.Marshal(f.Sources)
		if err := c.Store().(store.FeedStore).AddFeed(ctx, store.Feed{Serial: serial, GeneratedAt: gen, ExpiresAt: f.ExpiresAt,
			ImportedAt: time.Now(), Signed: signed, Sources: srcs}); err != nil {
			t.Fatal(err)
		}
		return len(signed)
	}

	if n := importAs(snap.Serial+1, 1000); n > server.MaxSentFeedSize {
		t.Fatalf("the small feed is %d bytes", n)
	}
	resp, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{})
	if err != nil || resp.FeedSerial != snap.Serial+1 || len(resp.Feed) == 0 {
		t.Fatalf("a feed under the limit: serial %d, %d bytes, %v; want %d sent", resp.GetFeedSerial(), len(resp.GetFeed()), err, snap.Serial+1)
	}

	if n := importAs(snap.Serial+2, server.MaxSentFeedSize); n <= server.MaxSentFeedSize {
		t.Fatalf("the large feed is only %d bytes", n)
	}
	resp, err = client.GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentFeedSerial: snap.Serial + 1})
	if err != nil {
		t.Fatal(err)
	}
	if resp.FeedSerial != snap.Serial+2 || len(resp.Feed) != 0 || !resp.Changed || resp.Name == "" {
		t.Fatalf("a feed over the limit: serial %d, %d feed bytes, policy changed %v %q; want %d announced, not sent, and the policy",
			resp.FeedSerial, len(resp.Feed), resp.Changed, resp.Name, snap.Serial+2)
	}
}
