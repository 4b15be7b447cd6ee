package dashboard_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/dashboard"
)

// Devices whose certificate expires within 14 days (they have not
// renewed) are flagged in the device list, can be filtered, and the
// device page says what to do; an expired one names the re-bind command.
func TestCertificateExpiryShown(t *testing.T) {
	ctx := context.Background()
	var ahead atomic.Int64 // how far the dashboard's clock runs ahead
	f := startFleet(t, func(c *dashboard.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	})
	viewer := newClient(t, f.base)
	viewer.login("victor", "victor-correct-horse")
	if _, page := viewer.do("GET", "/devices", nil); strings.Contains(page, "expires in") || strings.Contains(page, "cert-expired") {
		t.Fatal("fresh 90-day certificates flagged as expiring")
	}
	if _, page := viewer.do("GET", "/devices?cert=expiring", nil); !strings.Contains(page, `<p id="total">0 devices</p>`) {
		t.Errorf("filter for expiring certificates lists fresh ones:\n%s", page)
	}
	if err := f.c.Store().RevokeDevice(ctx, f.devices["win-bad"], time.Now()); err != nil {
		t.Fatal(err)
	}
	ahead.Store(int64(80 * 24 * time.Hour))        // 90-day certificates: 10 days left, less a few seconds
	viewer.login("victor", "victor-correct-horse") // the session expired meanwhile
	_, page := viewer.do("GET", "/devices?cert=expiring", nil)
	if !strings.Contains(page, `<p id="total">5 devices</p>`) || strings.Contains(page, "win-bad") || strings.Count(page, "expires in 9 days") != 5 {
		t.Errorf("80 days on: want the 5 unrevoked devices, each expiring in 9 days:\n%s", page)
	}
	if _, page := viewer.do("GET", "/devices/"+f.devices["lin-ok"], nil); !strings.Contains(page, "expires in 9 days") || !strings.Contains(page, "was not renewed") {
		t.Errorf("device page does not flag the expiring certificate:\n%s", page)
	}
	ahead.Store(int64(91 * 24 * time.Hour))
	viewer.login("victor", "victor-correct-horse")
	if _, page := viewer.do("GET", "/devices/"+f.devices["lin-ok"], nil); !strings.Contains(page, "token create --rebind "+f.devices["lin-ok"]) {
		t.Errorf("device page of an expired certificate does not name the re-bind command:\n%s", page)
	}
}
