package dashboard_test

import (
	"html"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The device list pages by cursor: Next follows the last device of the
// page, every device appears once, the last page has no Next, and a
// cursor that does not fit the sort shows the first page.
func TestDeviceListCursorPaging(t *testing.T) {
	h, cookie, _ := benchFleetStore(t, 120, -1)
	get := func(target string) string {
		t.Helper()
		req := httptest.NewRequest("GET", target, nil)
		req.AddCookie(cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("GET %s: %d %s", target, w.Code, w.Body.String())
		}
		return w.Body.String()
	}
	next := regexp.MustCompile(`<a href="([^"]*)" id="next">`)
	host := regexp.MustCompile(`>(host-\d{6})</a>`)
	seen := map[string]bool{}
	target, pages := "/devices?sort=-last_seen", 0
	for target != "" {
		page := get(target)
		pages++
		if !strings.Contains(page, `<p id="total">120 devices</p>`) {
			t.Fatalf("page %d: total not shown as exact:\n%s", pages, page)
		}
		if pages > 1 && !strings.Contains(page, `id="first"`) {
			t.Errorf("page %d has no link to the first page", pages)
		}
		for _, m := range host.FindAllStringSubmatch(page, -1) {
			if seen[m[1]] {
				t.Fatalf("page %d lists %s again", pages, m[1])
			}
			seen[m[1]] = true
		}
		target = ""
		if m := next.FindStringSubmatch(page); m != nil {
			target = "/devices" + html.UnescapeString(m[1])
			if !strings.Contains(target, "after=") || !strings.Contains(target, "sort=-last_seen") {
				t.Fatalf("next link %q", target)
			}
		}
	}
	if pages != 3 || len(seen) != 120 {
		t.Errorf("%d pages, %d devices; want 3 pages of the 120", pages, len(seen))
	}
	page := get("/devices?sort=hostname&after=bm90LWEtY3Vyc29y")
	if !strings.Contains(page, ">host-000000</a>") || strings.Contains(page, `id="first"`) {
		t.Errorf("a bad cursor does not show the first page:\n%s", page)
	}
}
