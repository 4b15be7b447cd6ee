package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// devices list flags certificates that expire within 14 days or have
// expired, and --expiring lists only those.
func TestDevicesListCertificateExpiry(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	early, _ := c.Enroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{Hostname: "early"})
	revoked, _ := c.Enroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{Hostname: "gone"})
	if out, code := run(t, "device", "revoke", "--data", c.DataDir, revoked); code != 0 {
		t.Fatalf("revoke: %s", out)
	}
	dev, err := c.Store().Device(ctx, early)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) string { return dev.CertNotAfter.Add(d).Format(time.RFC3339) }

	out, _ := run(t, "devices", "list", "--data", c.DataDir, "--now", at(-20*24*time.Hour))
	if !strings.Contains(out, "CERT") || !strings.Contains(out, " ok") || strings.Contains(out, "expires in") {
		t.Errorf("20 days before expiry:\n%s", out)
	}
	if out, _ := run(t, "devices", "list", "--data", c.DataDir, "--expiring", "--now", at(-20*24*time.Hour)); strings.Contains(out, early) {
		t.Errorf("--expiring 20 days before expiry lists the device:\n%s", out)
	}
	out, _ = run(t, "devices", "list", "--data", c.DataDir, "--expiring", "--now", at(-9*24*time.Hour-time.Hour))
	if !strings.Contains(out, early) || !strings.Contains(out, "expires in 9d") || strings.Contains(out, revoked) {
		t.Errorf("--expiring 9 days before expiry:\n%s", out)
	}
	out, _ = run(t, "devices", "list", "--data", c.DataDir, "--json", "--now", at(time.Hour))
	var rows []struct {
		ID   string `json:"id"`
		Cert string `json:"cert"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.ID] = r.Cert
	}
	if got[early] != "expired" || got[revoked] != "" {
		t.Errorf("--json after expiry: %v, want %s expired and %s (revoked) empty", got, early, revoked)
	}
	if out, _ := run(t, "device", "show", "--data", c.DataDir, early, "--now", at(time.Hour)); !strings.Contains(out, "token create --rebind "+early) {
		t.Errorf("device show of an expired certificate:\n%s", out)
	}
}

// device revoke and token revoke are audited like the dashboard's; an
// unknown id is a usage error.
func TestRevokesAudited(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	dev, _ := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	c.Token("staff", 1, time.Hour)
	ts, err := c.Store().Tokens(ctx)
	if err != nil || len(ts) == 0 {
		t.Fatal(err)
	}
	if _, code := run(t, "device", "revoke", "--data", c.DataDir, dev); code != 0 {
		t.Fatal("device revoke failed")
	}
	if _, code := run(t, "token", "revoke", "--data", c.DataDir, ts[0].ID); code != 0 {
		t.Fatal("token revoke failed")
	}
	es, err := c.Store().(store.Dashboard).Audit(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range es {
		got[e.Action] = e.Target
	}
	if got["device.revoke"] != dev || got["token.revoke"] != ts[0].ID {
		t.Errorf("audit = %v, want device.revoke %s and token.revoke %s", got, dev, ts[0].ID)
	}
	if _, code := run(t, "device", "revoke", "--data", c.DataDir, "dev_none"); code != 3 {
		t.Errorf("revoking an unknown device: exit %d, want 3", code)
	}
	if _, code := run(t, "token", "revoke", "--data", c.DataDir, "tok_none"); code != 3 {
		t.Errorf("revoking an unknown token: exit %d, want 3", code)
	}
}
