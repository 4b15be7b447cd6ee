package dashboard_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// artefacts is where a browser test keeps its screenshots:
// $WARD_ARTEFACTS/<test> when set (CI keeps it), else the test's artifact
// directory (kept by go test -artifacts), so a person can look at what
// the test saw.
func artefacts(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("WARD_ARTEFACTS"); d != "" {
		dir := filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// screenshot saves the whole page as name.png in the test's artefacts.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artefacts(t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// signIn signs user in with the test fleets' password (user +
// "-correct-horse") and waits for a signed-in page.
func signIn(t *testing.T, ctx context.Context, base, user string) {
	t.Helper()
	run(t, ctx, "sign in as "+user,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), user+"-correct-horse"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#whoami")),
	)
}

// script runs js in the page as a step of a run.
func script(js string) chromedp.Action[chromedp.Void] {
	eval := chromedp.Evaluate[bool](js)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := eval(ctx, t)
		return chromedp.Void{}, err
	}
}

// clickLoads clicks sel and waits for wait on the page the click loads,
// not on the one it was clicked on (which may have wait too): the page is
// marked first, and only an unmarked one counts.
func clickLoads(sel, wait string) chromedp.Action[chromedp.Void] {
	mark := script(`document.body.dataset.before = "1"; true`)
	click := chromedp.Click(chromedp.CSS(sel))
	loaded := chromedp.WaitVisible(chromedp.CSS("body:not([data-before]) " + wait))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for _, a := range []chromedp.Action[chromedp.Void]{mark, click, loaded} {
			if _, err := a(ctx, t); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
}
