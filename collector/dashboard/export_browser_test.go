package dashboard_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestExportFormInBrowser: a viewer reaches the export form from the
// navigation; an as-of before the fleet's first report comes back as the
// form with the reason, not as an empty file.
func TestExportFormInBrowser(t *testing.T) {
	ctx := browser(t)
	f := startFleet(t)
	run(t, ctx, "sign in",
		chromedp.Navigate(f.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), "victor"),
		chromedp.SendKeys(chromedp.CSS("#password"), "victor-correct-horse"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#counts")),
		chromedp.Click(chromedp.Search(`//nav/a[text()="Export"]`)),
		chromedp.WaitVisible(chromedp.CSS("#export")),
	)
	run(t, ctx, "export as of 2001",
		chromedp.SetValue(chromedp.CSS("#x-asof"), "2001-01-01"),
		chromedp.SetValue(chromedp.CSS("#x-format"), "json"),
		chromedp.Click(chromedp.CSS("#x-download")),
		chromedp.WaitVisible(chromedp.CSS("#error")),
	)
	if s := text(t, ctx, "#error"); !strings.Contains(s, "as_of 2001-01-01") || !strings.Contains(s, "no report had been collected") {
		t.Errorf("error = %q", s)
	}
	// The form keeps what was asked, to correct it.
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#x-asof")))
	if err != nil || v != "2001-01-01" {
		t.Errorf("as-of field after the refusal = %q (%v)", v, err)
	}
	if s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#x-format"))); err != nil || s != "json" {
		t.Errorf("format after the refusal = %q (%v)", s, err)
	}
	// At phone width the form fits: no horizontal page overflow.
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(f.base+"/export"), chromedp.WaitVisible(chromedp.CSS("#export")))
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || w > 390 {
		t.Errorf("export page at 390 px is %d px wide (%v)", w, err)
	}
	// Kept with go test -artifacts -outputdir DIR.
	if b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err != nil {
		t.Errorf("screenshot: %v", err)
	} else if err := os.WriteFile(filepath.Join(artefacts(t), "export-390.png"), b, 0o644); err != nil {
		t.Error(err)
	}
	// The export itself, with the browser's session: JSON with its metadata.
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch('/export?format=json').then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.Contains(body, `"metadata"`) || !strings.Contains(body, `"generated_at"`) || !strings.Contains(body, "lin-bad") {
		t.Errorf("export from the browser: %v\n%.300s", err, body)
	}
}
