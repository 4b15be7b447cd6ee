package dashboard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/feed/snapshot"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestFeedPageInBrowser: the overview names the current feed's serial and
// warns once it is old or expired; /feed lists a device on a line that
// reaches its end of life within 90 days with its days left.
func TestFeedPageInBrowser(t *testing.T) {
	ctx := browser(t)
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	// 2027-01-02: the built-in feed (generated 2026-08-22, expiring
	// 2027-02-18) is 132 days old; ubuntu 22.04's end of life, 2027-04-01,
	// is 89 days away; ubuntu 24.04's (the seed's lin-ok) is 2029.
	clock := &testClock{}
	clock.to(time.Date(2027, 1, 2, 12, 0, 0, 0, time.UTC))
	f := startFleet(t, func(dc *dashboard.Config) { dc.Now = clock.now; dc.CacheFor = -1 })
	bg := context.Background()
	id, cert := f.c.Enroll(bg, f.c.Token("hq", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: "jammy-box", Platform: "linux", OsName: "Ubuntu", OsVersion: "22.04", Architecture: "amd64", AgentVersion: "test", MachineId: "jammy-box",
	})
	facts := &wardv1.Facts{CollectedAt: timestamppb.Now(), Os: &wardv1.OSFacts{
		Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Platform: "linux", Name: "Ubuntu", Id: "ubuntu", Version: "22.04",
	}}
	if _, err := wardv1grpc.NewAgentServiceClient(f.c.Dial(&cert)).Report(bg, &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: 1, CollectedAt: timestamppb.Now(), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 1, Facts: facts,
	}}); err != nil {
		t.Fatal(err)
	}

	signIn(t, ctx, f.base, "victor")
	run(t, ctx, "overview", chromedp.Navigate(f.base+"/"), chromedp.WaitVisible(chromedp.CSS("#feed-summary")))
	screenshot(t, ctx, "overview-feed")
	if got := text(t, ctx, "#feed-summary-serial"); got != "202608221855" || snap.Serial != 202608221855 {
		t.Errorf("overview feed serial = %q", got)
	}
	sum := text(t, ctx, "#feed-summary")
	if !strings.Contains(sum, "132 days old") || !strings.Contains(sum, "expires in 47 days") || number(t, ctx, "#feed-summary-eol") == 0 {
		t.Errorf("overview feed line = %q", sum)
	}
	cls, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#feed-summary"), "class"))
	if err != nil || cls.Value != "error" {
		t.Errorf("a feed 132 days old is not warned of: class %q (%v)", cls.Value, err)
	}

	run(t, ctx, "feed page", clickLoads("#feed-summary a[href='/feed']", "#feed"))
	screenshot(t, ctx, "feed")
	if got := text(t, ctx, "#feed-serial"); got != "202608221855" {
		t.Errorf("feed serial = %q", got)
	}
	if got := text(t, ctx, "#feed-origin"); got != "built in" {
		t.Errorf("feed origin = %q", got)
	}
	if got := text(t, ctx, "#feed-warning"); !strings.Contains(got, "132 days old") {
		t.Errorf("feed warning = %q", got)
	}
	row := "#eol tr[data-device='" + id + "']"
	if got := text(t, ctx, row+" .line"); got != "ubuntu-22.04" {
		t.Errorf("eol line = %q", got)
	}
	if got := text(t, ctx, row+" .eol-date"); got != "2027-04-01" {
		t.Errorf("eol date = %q", got)
	}
	if got := text(t, ctx, row+" .days-left"); got != "89" {
		t.Errorf("days left = %q", got)
	}
	// debian 12 (lin-bad) ended 2026-07-11: listed, past.
	if got := text(t, ctx, "#eol tr[data-device='"+f.devices["lin-bad"]+"'] .days-left"); got != "past (175 days ago)" {
		t.Errorf("lin-bad (debian 12) days left = %q", got)
	}
	// ubuntu 24.04 (lin-ok) ends in 2029: not listed.
	for _, host := range []string{"lin-ok"} {
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#eol tr[data-device='`+f.devices[host]+`']").length`)); err != nil || n != 0 {
			t.Errorf("%s (ubuntu 24.04) listed %d times (%v)", host, n, err)
		}
	}

	// Past its expires_at the feed is EXPIRED, loudly, on both pages.
	clock.to(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC))
	// (Two months on, the session has ended: sign in again.)
	signIn(t, ctx, f.base, "victor")
	run(t, ctx, "feed page expired", chromedp.Navigate(f.base+"/feed"), chromedp.WaitVisible(chromedp.CSS("#feed")))
	screenshot(t, ctx, "feed-expired")
	if got := text(t, ctx, "#feed-warning"); !strings.Contains(got, "EXPIRED") || !strings.Contains(got, "UNKNOWN") {
		t.Errorf("expired feed warning = %q", got)
	}
	run(t, ctx, "overview expired", chromedp.Navigate(f.base+"/"), chromedp.WaitVisible(chromedp.CSS("#feed-summary")))
	if got := text(t, ctx, "#feed-summary"); !strings.Contains(got, "EXPIRED 2027-02-18 18:55 UTC") {
		t.Errorf("overview feed line when expired = %q", got)
	}
}
