package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/install"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/agent/service"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/feedtest"
	"github.com/wardhq/ward/feed/snapshot"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// snapshotAs is a copy of the built-in snapshot under another serial,
// generated an hour ago and valid for 180 days (so the test does not
// depend on the snapshot's own expiry).
func snapshotAs(t *testing.T, serial uint64) *feed.Feed {
	t.Helper()
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	f := *snap
	gen := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	f.Serial, f.GeneratedAt, f.ExpiresAt = serial, gen, gen.Add(180*24*time.Hour)
	return &f
}

// importFeed stores f, signed with key, in c's store as `ward-collector
// feed import` does (the running collector notices it on its next call).
func importFeed(t *testing.T, c *servertest.Collector, f *feed.Feed, key *ecdsa.PrivateKey) {
	t.Helper()
	srcs, err := json.Marshal(f.Sources)
	if err != nil {
		t.Fatal(err)
	}
	fs, ok := c.Store().(store.FeedStore)
	if !ok {
		t.Fatal("the collector's store keeps no release feeds")
	}
	if err := fs.AddFeed(context.Background(), store.Feed{Serial: f.Serial, GeneratedAt: f.GeneratedAt, ExpiresAt: f.ExpiresAt,
		ImportedAt: time.Now().UTC(), Signed: feedtest.SignedFile(t, f, key), Sources: srcs}); err != nil {
		t.Fatalf("import feed %d: %v", f.Serial, err)
	}
}

// cachedSerial is the serial of the feed cached in state, verified with
// the pinned key (0: none, or it does not verify).
func cachedSerial(t *testing.T, state string) uint64 {
	t.Helper()
	id, err := enroll.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	return report.LoadFeed(id, nil).Serial()
}

// checkFeedSerial runs `ward-agent check --json` on the replayed machine
// with state as the installed agent's state directory and returns the
// feed serial it judged by.
func checkFeedSerial(t *testing.T, state string) uint64 {
	t.Helper()
	code, stdout, stderr := agentWithState(t, state, "check", "--json")
	var out struct {
		FeedSerial uint64 `json:"feed_serial"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("check --json = %d: %v; stderr %s", code, err, stderr)
	}
	return out.FeedSerial
}

// agentWithState runs ward-agent on the replayed machine with state as
// the installed agent's state directory.
func agentWithState(t *testing.T, state string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	src := replayed(t)
	a := &app{version: "test", stdout: &stdout, stderr: &stderr, newSource: func() check.Source { return src },
		layout: install.Layout{StateDir: state}}
	code := a.execute(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

// TestFeedDeliveredOverTheWire runs release feed delivery end to end: a
// real collector (gRPC over mutual TLS, SQLite) and `ward-agent enroll`,
// `run --once` and `check`. Enrolment pins the collector's feed key; the
// feed comes with GetPolicy only when the agent holds another serial, is
// cached and judged by; a newer feed imported while the collector runs
// reaches the agent in its next round; reports carry the serial; a feed older than
// the cached one and one signed by a changed key are refused, the cached
// one kept; with the collector stopped, check judges by the cache; and
// status --service names the feed judged by.
func TestFeedDeliveredOverTheWire(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	state := filepath.Join(t.TempDir(), "state")
	if code, stdout, stderr := runWith(t, replayed(t), "enroll", "--collector", c.Addr, "--token", c.Token("staff", 1, time.Hour),
		"--ca-fingerprint", c.Fingerprint, "--state", state); code != 0 {
		t.Fatalf("enroll = %d, %q, %q", code, stdout, stderr)
	}

	// Enrolment pinned the collector's feed key.
	id, err := enroll.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	collectorKey, collectorCert, err := c.Server().CA().FeedKey(c.DataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(id.FeedKey, collectorCert.Raw) {
		t.Fatal("enrolment did not pin the collector's feed key certificate")
	}
	if pem, err := os.ReadFile(filepath.Join(state, enroll.FeedKeyFile)); err != nil || !strings.Contains(string(pem), "BEGIN CERTIFICATE") {
		t.Fatalf("%s after enrolment: %v", enroll.FeedKeyFile, err)
	}
	pub, err := id.FeedPublicKey()
	if err != nil {
		t.Fatal(err)
	}

	// No feed imported: the collector's current feed is the snapshot,
	// signed with its key, sent to an agent holding none.
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := cl.GetPolicy(ctx, "", 0, "none", 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.FeedSerial != snap.Serial || len(resp.Feed) == 0 {
		t.Fatalf("GetPolicy with no feed held: feed_serial %d, %d feed bytes; want %d and the feed", resp.FeedSerial, len(resp.Feed), snap.Serial)
	}
	sent, err := feed.DecodeSigned(bytes.NewReader(resp.Feed))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := feed.Verify(sent, pub); err != nil || got.Serial != snap.Serial {
		t.Fatalf("the sent feed with the pinned key: %v, %v", got, err)
	}
	if !bytes.Equal(resp.FeedKeyCertificateDer, collectorCert.Raw) {
		t.Error("GetPolicy names another feed key certificate than enrolment")
	}

	// A round caches it, verified.
	round := func() {
		t.Helper()
		if code, stdout, stderr := runWith(t, replayed(t), "run", "--once", "--state", state); code != 0 || !strings.Contains(stdout, "0 waiting") {
			t.Fatalf("run --once = %d, %q, %q", code, stdout, stderr)
		}
	}
	round()
	cache, err := os.ReadFile(filepath.Join(state, report.FeedFile))
	if err != nil {
		t.Fatalf("no cached feed after a round: %v", err)
	}
	if !bytes.Equal(cache, resp.Feed) {
		t.Error("the cache is not the file the collector sent")
	}
	if got := cachedSerial(t, state); got != snap.Serial {
		t.Fatalf("cached serial %d, want %d", got, snap.Serial)
	}
	resp, err = cl.GetPolicy(ctx, "", 0, "none", snap.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if resp.FeedSerial != snap.Serial || len(resp.Feed) != 0 {
		t.Fatalf("GetPolicy holding the current feed: feed_serial %d, %d feed bytes; want %d and no body", resp.FeedSerial, len(resp.Feed), snap.Serial)
	}

	// A newer feed imported while the collector runs: the next round
	// fetches it, and reports are judged by it on both sides.
	newer := snapshotAs(t, snap.Serial+1)
	importFeed(t, c, newer, collectorKey)
	round()
	if got := cachedSerial(t, state); got != newer.Serial {
		t.Fatalf("after importing %d the agent caches %d", newer.Serial, got)
	}
	round()
	reps := c.Reports(id.DeviceID)
	last := slices.MaxFunc(reps, func(a, b store.Report) int { return int(a.Sequence) - int(b.Sequence) })
	if last.FeedSerial != newer.Serial {
		t.Errorf("the stored report was judged by feed %d, want %d", last.FeedSerial, newer.Serial)
	}
	ob, err := outbox.Open(filepath.Join(state, service.OutboxDir), outbox.Options{Sealer: cl.Sealer()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Append(&wardv1.Report{Epoch: id.Epoch, CollectedAt: timestamppb.Now(), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 2,
		FeedSerial: newer.Serial, Facts: collect.All(ctx, replayed(t), time.Now())}); err != nil {
		t.Fatal(err)
	}
	var acked []uint64
	if n, err := cl.Deliver(ctx, ob, func(r *wardv1.ReportResponse) { acked = append(acked, r.FeedSerial) }); err != nil || n != 1 {
		t.Fatalf("deliver = %d, %v", n, err)
	}
	if len(acked) != 1 || acked[0] != newer.Serial {
		t.Errorf("ReportResponse.feed_serial = %v, want [%d]", acked, newer.Serial)
	}

	// Rollback: the agent holds a newer feed than the collector's (a
	// collector restored from an older backup). The collector's is sent
	// and refused; the cached one stays.
	ahead := snapshotAs(t, newer.Serial+10)
	if err := os.WriteFile(filepath.Join(state, report.FeedFile), feedtest.SignedFile(t, ahead, collectorKey), 0o644); err != nil {
		t.Fatal(err)
	}
	agentFeed := report.LoadFeed(id, nil)
	if agentFeed.Serial() != ahead.Serial {
		t.Fatalf("the planted cache reads as %d", agentFeed.Serial())
	}
	pol := report.LoadPolicy(state, nil)
	if _, err := pol.Refresh(ctx, cl, agentFeed); err != nil {
		t.Fatal(err)
	}
	if agentFeed.Serial() != ahead.Serial || !strings.Contains(agentFeed.Refused(), "rollback") {
		t.Fatalf("an older feed over the wire: serial %d, refused %q; want %d kept, a rollback refusal", agentFeed.Serial(), agentFeed.Refused(), ahead.Serial)
	}
	if agentFeed.Differs(newer.Serial) {
		t.Error("the refused serial would be fetched again")
	}
	if got := cachedSerial(t, state); got != ahead.Serial {
		t.Fatalf("the cache after a rollback is %d, want %d", got, ahead.Serial)
	}
	if err := os.WriteFile(filepath.Join(state, report.FeedFile), cache, 0o644); err != nil {
		t.Fatal(err)
	}
	round()
	if got := cachedSerial(t, state); got != newer.Serial {
		t.Fatalf("back on the collector's feed: cached %d, want %d", got, newer.Serial)
	}

	// The collector's feed key changes (its pki/feed.key lost): what it
	// signs now, even a newer feed and under a certificate of the same
	// CA, is refused; the pinned key and the cached feed stay.
	c.Stop()
	for _, name := range []string{"feed.key", "feed.crt"} {
		if err := os.Remove(filepath.Join(c.DataDir, "pki", name)); err != nil {
			t.Fatal(err)
		}
	}
	c.Restart()
	newKey, newCert, err := c.Server().CA().FeedKey(c.DataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if newKey.PublicKey.Equal(&collectorKey.PublicKey) {
		t.Fatal("the collector kept its feed key")
	}
	newest := snapshotAs(t, newer.Serial+1)
	importFeed(t, c, newest, newKey)
	cl2, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	agentFeed = report.LoadFeed(id, nil)
	if _, err := report.LoadPolicy(state, nil).Refresh(ctx, cl2, agentFeed); err != nil {
		t.Fatal(err)
	}
	if agentFeed.Serial() != newer.Serial || !strings.Contains(agentFeed.Refused(), "signature does not verify") {
		t.Fatalf("a feed signed by a changed key: serial %d, refused %q; want %d kept and a signature refusal", agentFeed.Serial(), agentFeed.Refused(), newer.Serial)
	}
	round()
	if got := cachedSerial(t, state); got != newer.Serial {
		t.Fatalf("the cache after a changed key is %d, want %d", got, newer.Serial)
	}
	if again, _ := enroll.Load(state); !bytes.Equal(again.FeedKey, collectorCert.Raw) || bytes.Equal(again.FeedKey, newCert.Raw) {
		t.Fatal("the pinned feed key was replaced")
	}

	// Offline: check judges by the cached feed.
	c.Stop()
	if got := checkFeedSerial(t, state); got != newer.Serial {
		t.Errorf("check with the collector stopped judged by feed %d, want the cached %d", got, newer.Serial)
	}

	// status --service names the feed judged by and where it came from.
	_, stdout, _ := agentWithState(t, state, "status", "--service", "--state", state)
	want := fmt.Sprintf("release feed: serial %d (cached from the collector), generated %s (today), expires %s (in 179 days)\n",
		newer.Serial, newer.GeneratedAt.Format("2006-01-02"), newer.ExpiresAt.Format("2006-01-02"))
	if !strings.Contains(stdout, want) {
		t.Errorf("status --service lacks %q:\n%s", want, stdout)
	}
	if err := os.WriteFile(filepath.Join(state, report.FeedFile), []byte(`{"format":"ward-signed-release-feed/1"`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stdout, _ = agentWithState(t, state, "status", "--service", "--state", state)
	want = fmt.Sprintf("release feed: serial %d (built-in snapshot), generated 2026-08-22 (", snap.Serial)
	if !strings.Contains(stdout, want) || !strings.Contains(stdout, "the cached "+report.FeedFile+" is unusable") {
		t.Errorf("status --service with a corrupt cache lacks %q and the unusable cache:\n%s", want, stdout)
	}
	if got := checkFeedSerial(t, state); got != snap.Serial {
		t.Errorf("check with a corrupt cache judged by feed %d, want the snapshot's %d", got, snap.Serial)
	}
}
