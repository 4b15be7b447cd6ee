package dashboard_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// TestTOTPInBrowser enrols a second factor and signs in with it in
// Chromium, at desktop and phone width; screenshots go to the test's
// artefact directory (go test -artifacts keeps them).
func TestTOTPInBrowser(t *testing.T) {
	ctx := browser(t)
	clk := &clock{t: time.Now().UTC()}
	d := startTOTPDash(t, nil, clk, newTOTPKey(t))
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(artefacts(t), name+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noOverflow := func(what string) {
		t.Helper()
		w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if w > 390 {
			t.Errorf("%s is %d px wide at 390 px", what, w)
		}
	}

	run(t, ctx, "sign in with the password",
		chromedp.Navigate(d.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "amina"),
		chromedp.SendKeys(chromedp.CSS("#password"), "amina-correct-horse"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#whoami")),
	)
	run(t, ctx, "start enrolment",
		chromedp.Navigate(d.url+"/account"),
		chromedp.WaitVisible(chromedp.CSS("#totp-enrol")),
		chromedp.SendKeys(chromedp.CSS("#enrol-password"), "amina-correct-horse"),
		chromedp.Click(chromedp.CSS("#enrol")),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")),
	)
	secret := text(t, ctx, "#totp-secret")
	if uri := text(t, ctx, "#totp-uri"); !strings.HasPrefix(uri, "otpauth://totp/Ward:amina?") || !strings.Contains(uri, "secret="+secret) {
		t.Fatalf("enrolment URI %q does not carry secret %q", uri, secret)
	}
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
	noOverflow("the enrolment page")
	shot("totp-enrol-390")
	run(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))
	code, err := totp.GenerateCode(secret, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "confirm the first code",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	if s := text(t, ctx, "#totp-status"); !strings.Contains(s, "on since") {
		t.Fatalf("status after confirmation: %q", s)
	}

	run(t, ctx, "sign out and in again",
		chromedp.Click(chromedp.CSS(".logout button")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "amina"),
		chromedp.SendKeys(chromedp.CSS("#password"), "amina-correct-horse"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#totp")),
	)
	if u := text(t, ctx, "#totp-user"); u != "amina" {
		t.Fatalf("second factor page is for %q", u)
	}
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
	noOverflow("the second factor page")
	shot("totp-signin-390")
	run(t, ctx, "desktop width", chromedp.EmulateViewport(1280, 900))
	// The confirmation's code again: used already.
	run(t, ctx, "replayed code",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS("#verify")),
		chromedp.WaitVisible(chromedp.CSS("#error")),
	)
	if s := text(t, ctx, "#error"); !strings.Contains(s, "used already") {
		t.Fatalf("replayed code: %q", s)
	}
	shot("totp-replayed")
	clk.advance(30 * time.Second)
	code, _ = totp.GenerateCode(secret, clk.now())
	run(t, ctx, "next code",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS("#verify")),
		chromedp.WaitVisible(chromedp.CSS("#whoami")),
	)
	if s := text(t, ctx, "#whoami"); s != "amina (admin)" {
		t.Fatalf("signed in as %q", s)
	}
}
