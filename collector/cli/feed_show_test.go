package cli_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/feedtest"
	"github.com/wardhq/ward/feed/snapshot"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// feedFleet enrols and reports four Linux devices: ubuntu 22.04 (end of
// life 2027-04-01 in the snapshot), debian 12 (2026-07-11, past), debian 13
// (2028-08-09) and one of a distribution the feed does not know.
func feedFleet(t *testing.T) (*servertest.Collector, map[string]string) {
	t.Helper()
	ctx := context.Background()
	c := servertest.Start(t)
	out, code := run(t, "token", "create", "--data", c.DataDir, "--group", "staff", "--uses", "4", "--ttl", "1h", "--json")
	var tok struct{ Token string }
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil {
		t.Fatalf("token create: %q", out)
	}
	ids := map[string]string{}
	for _, d := range []struct{ host, id, version string }{
		{"jammy", "ubuntu", "22.04"}, {"bookworm", "debian", "12"}, {"trixie", "debian", "13"}, {"odd", "gentoo", "2.17"},
	} {
		id, cert := c.Enroll(ctx, tok.Token, &wardv1.DeviceInfo{Hostname: d.host, Platform: "linux", OsName: d.id, OsVersion: d.version, Architecture: "amd64", AgentVersion: "test", MachineId: d.host})
		ids[d.host] = id
		facts := &wardv1.Facts{
			CollectedAt: timestamppb.Now(),
			Os:          &wardv1.OSFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Platform: "linux", Name: d.id, Id: d.id, Version: d.version},
		}
		if _, err := wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: 1, CollectedAt: timestamppb.Now(), Facts: facts}}); err != nil {
			t.Fatalf("report %s: %v", d.host, err)
		}
	}
	return c, ids
}

func feedShow(t *testing.T, args ...string) cli.FeedShow {
	t.Helper()
	out, code := run(t, append([]string{"feed", "show", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("feed show %v: exit %d", args, code)
	}
	var s cli.FeedShow
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("feed show --json: %v\n%s", err, out)
	}
	return s
}

func TestFeedShowBuiltIn(t *testing.T) {
	c, ids := feedFleet(t)
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	now := "2027-01-02T00:00:00Z"
	s := feedShow(t, "--data", c.DataDir, "--now", now)
	if s.Serial != snap.Serial || !s.BuiltIn || s.StoredSerial != 0 || s.ImportedAt != nil || s.Expired {
		t.Errorf("feed show = serial %d built_in %v stored %d imported %v expired %v", s.Serial, s.BuiltIn, s.StoredSerial, s.ImportedAt, s.Expired)
	}
	// Generated 2026-08-22T18:55:51Z, expires 2027-02-18T18:55:51Z.
	if s.AgeDays != 132 || s.DaysLeft != 47 {
		t.Errorf("age %d days, %d days left; want 132 and 47", s.AgeDays, s.DaysLeft)
	}
	releases := 0
	for _, l := range snap.Lines {
		releases += len(l.Releases)
	}
	if s.Lines != len(snap.Lines) || s.Releases != releases || len(s.Sources) != len(snap.Sources) || s.Sources[0].SHA256 != snap.Sources[0].SHA256 {
		t.Errorf("lines %d releases %d sources %v", s.Lines, s.Releases, s.Sources)
	}
	// debian 12 ended 2026-07-11 (175 days before), ubuntu 22.04 ends
	// 2027-04-01 (89 days on); debian 13 is years away; gentoo is on no line.
	if s.EOLWithinDays != 90 || s.EOL.Checked != 4 || s.EOL.Unplaced != 1 || len(s.EOL.Devices) != 2 {
		t.Fatalf("eol = %+v", s.EOL)
	}
	d0, d1 := s.EOL.Devices[0], s.EOL.Devices[1]
	if d0.DeviceID != ids["bookworm"] || d0.LineID != "debian-12" || d0.EOL.String() != "2026-07-11" || d0.DaysLeft != -175 {
		t.Errorf("first eol device = %+v", d0)
	}
	if d1.DeviceID != ids["jammy"] || d1.Hostname != "jammy" || d1.LineID != "ubuntu-22.04" || d1.EOL.String() != "2027-04-01" || d1.DaysLeft != 89 {
		t.Errorf("second eol device = %+v", d1)
	}
	// --days 88 leaves ubuntu out; the past one stays.
	if s := feedShow(t, "--data", c.DataDir, "--now", now, "--days", "88"); len(s.EOL.Devices) != 1 || s.EOL.Devices[0].LineID != "debian-12" {
		t.Errorf("--days 88: %+v", s.EOL.Devices)
	}
	out, code := run(t, "feed", "show", "--data", c.DataDir, "--now", now)
	for _, want := range []string{"release feed serial 202608221855, built in", "expires 2027-02-18T18:55:51Z (47 days left)", "endoflife-ubuntu", ids["jammy"], "ubuntu-22.04", "2027-04-01", "PAST (175 days ago)", "1 on no line of the feed"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("feed show does not say %q:\n%s", want, out)
		}
	}
	if _, code := run(t, "feed", "show", "--data", c.DataDir, "--days", "-1"); code != 3 {
		t.Errorf("--days -1: exit %d, want 3 (input)", code)
	}
}

func TestFeedShowExpired(t *testing.T) {
	c, _ := feedFleet(t)
	now := "2027-03-01T00:00:00Z"
	s := feedShow(t, "--data", c.DataDir, "--now", now)
	if !s.Expired || s.DaysLeft != -11 {
		t.Errorf("expired %v, %d days left; want expired 10 days 5 hours ago (-11)", s.Expired, s.DaysLeft)
	}
	out, _ := run(t, "feed", "show", "--data", c.DataDir, "--now", now)
	if !strings.Contains(out, "EXPIRED 2027-02-18T18:55:51Z (11 days ago)") || !strings.Contains(out, "UNKNOWN") {
		t.Errorf("an expired feed is not said loudly:\n%s", out)
	}
}

func TestFeedShowImported(t *testing.T) {
	ctx := context.Background()
	c, ids := feedFleet(t)
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	// A newer feed: the snapshot with a greater serial, later dates, and
	// ubuntu 22.04's end of life moved to 2027-01-12.
	f := feedtest.Copy(t, snap)
	f.Serial = snap.Serial + 100
	f.GeneratedAt = time.Date(2026, 12, 20, 6, 0, 0, 0, time.UTC)
	f.ExpiresAt = f.GeneratedAt.AddDate(0, 0, 180)
	for i := range f.Lines {
		if f.Lines[i].ID == "ubuntu-22.04" {
			f.Lines[i].EOL = feed.Date{Year: 2027, Month: time.January, Day: 12}
		}
	}
	if err := feed.Validate(f); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed := feedtest.SignedFile(t, f, key)
	imported := time.Date(2026, 12, 21, 9, 30, 0, 0, time.UTC)
	sources, _ := json.Marshal(f.Sources)
	if err := c.Store().(store.FeedStore).AddFeed(ctx, store.Feed{Serial: f.Serial, GeneratedAt: f.GeneratedAt, ExpiresAt: f.ExpiresAt, ImportedAt: imported, Signed: signed, Sources: sources}); err != nil {
		t.Fatal(err)
	}
	s := feedShow(t, "--data", c.DataDir, "--now", "2027-01-02T00:00:00Z", "--days", "30")
	if s.Serial != f.Serial || s.BuiltIn || s.StoredSerial != f.Serial || s.ImportedAt == nil || !s.ImportedAt.Equal(imported) {
		t.Errorf("feed show = serial %d built_in %v stored %d imported %v", s.Serial, s.BuiltIn, s.StoredSerial, s.ImportedAt)
	}
	if s.AgeDays != 12 || s.DaysLeft != 167 || s.Expired {
		t.Errorf("age %d, %d days left, expired %v; want 12, 167, false", s.AgeDays, s.DaysLeft, s.Expired)
	}
	if len(s.EOL.Devices) != 2 || s.EOL.Devices[1].DeviceID != ids["jammy"] || s.EOL.Devices[1].DaysLeft != 10 || s.EOL.Devices[1].EOL.String() != "2027-01-12" {
		t.Errorf("eol devices by the imported feed = %+v", s.EOL.Devices)
	}
	out, _ := run(t, "feed", "show", "--data", c.DataDir, "--now", "2027-01-02T00:00:00Z")
	if !strings.Contains(out, "imported 2026-12-21T09:30:00Z") {
		t.Errorf("feed show does not say when the feed was imported:\n%s", out)
	}
}
