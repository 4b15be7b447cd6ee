package cli

import (
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/policies"
)

// TestStatusIgnoresAnotherEnrolment: a status file left by a previous,
// purged installation (another device, or an earlier epoch of this one)
// is not shown as this laptop's; this enrolment's own file is.
func TestStatusIgnoresAnotherEnrolment(t *testing.T) {
	state := t.TempDir()
	os.WriteFile(filepath.Join(state, enroll.DeviceFile), []byte(`{"device_id":"dev_now","collector":"c:443","epoch":2}`), 0o644)
	saved := func(t *testing.T, device string, epoch uint64) string {
		dir := t.TempDir()
		st := notify.Status{Format: notify.Format, DeviceID: device, Epoch: epoch, CheckedAt: time.Now().UTC(),
			Platform: "linux", Policy: "baseline", PolicyVersion: 1, Results: []notify.Result{{
				RuleID: "disk-encrypted", Family: "disk", Severity: "high", Status: policies.StatusFail,
				Observed: "root not encrypted", Texts: map[string]notify.Texts{"en": {Title: "Disk encryption", Steps: "encrypt it"}}}}}
		data, _ := json.Marshal(st)
		if err := os.WriteFile(filepath.Join(dir, notify.StatusFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	home := t.TempDir()
	for _, tc := range []struct {
		name          string
		device        string
		epoch         uint64
		state         string
		wantCode      int
		wantIgnored   bool
		wantMentioned string
	}{
		{"this enrolment", "dev_now", 2, state, ExitFail, false, "Disk encryption"},
		{"another device", "dev_old", 1, state, ExitUnknown, true, "dev_old"},
		{"an earlier epoch of this device", "dev_now", 1, state, ExitUnknown, true, "epoch 1"},
		{"not enrolled any more", "dev_now", 2, filepath.Join(state, "purged"), ExitUnknown, true, "not enrolled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := saved(t, tc.device, tc.epoch)
			code, out := agentProcess(t, home, "status", "--status-dir", dir, "--state", tc.state)
			ignored := strings.Contains(out, "another enrolment")
			if code != tc.wantCode || ignored != tc.wantIgnored || !strings.Contains(out, tc.wantMentioned) {
				t.Errorf("status = %d, ignored %v:\n%s\nwant %d, ignored %v, mentioning %q", code, ignored, out, tc.wantCode, tc.wantIgnored, tc.wantMentioned)
			}
			if tc.wantIgnored && strings.Contains(out, "Disk encryption") {
				t.Errorf("the other enrolment's results are shown:\n%s", out)
			}
		})
	}
}

// certText says when the certificate renews, when its renewal is overdue
// and, once expired, what to do; only expiry makes it invalid.
func TestCertText(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	id := &enroll.Identity{}
	id.Cert.Leaf = &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	for _, tc := range []struct {
		at    time.Duration
		want  string
		valid bool
	}{
		{10 * 24 * time.Hour, "renews itself from", true},
		{70 * 24 * time.Hour, "renewal due since", true},
		{91 * 24 * time.Hour, "EXPIRED on", false},
	} {
		text, valid := certText(id, nb.Add(tc.at))
		if !strings.Contains(text, tc.want) || valid != tc.valid {
			t.Errorf("day %v: %q (valid %v), want %q (valid %v)", tc.at/(24*time.Hour), text, valid, tc.want, tc.valid)
		}
	}
}

// A failure the organisation waived does not make status exit 1 while the
// waiver runs; once it ends, or with another failure, it does.
func TestStatusExitWaived(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	waived := notify.Result{RuleID: "fw", Status: policies.StatusFail, Waiver: &notify.Waiver{Reason: "field kit", ExpiresAt: now.Add(time.Hour)}}
	pass := notify.Result{RuleID: "disk", Status: policies.StatusPass}
	code := func(rs ...notify.Result) int {
		err := statusExit(notify.Status{Results: rs}, now)
		if err == nil {
			return ExitPass
		}
		return err.(exitError).code
	}
	if got := code(pass, waived); got != ExitPass {
		t.Errorf("only a waived failure: exit %d, want %d", got, ExitPass)
	}
	expired := waived
	expired.Waiver = &notify.Waiver{Reason: "field kit", ExpiresAt: now}
	if got := code(pass, expired); got != ExitFail {
		t.Errorf("waiver ended: exit %d, want %d", got, ExitFail)
	}
	if got := code(waived, notify.Result{RuleID: "patch", Status: policies.StatusFail}); got != ExitFail {
		t.Errorf("waived and another failure: exit %d, want %d", got, ExitFail)
	}
	if got := code(waived, notify.Result{RuleID: "patch", Status: policies.StatusUnknown}); got != ExitUnknown {
		t.Errorf("waived and an unknown: exit %d, want %d", got, ExitUnknown)
	}
}
