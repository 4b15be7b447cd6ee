package dashboard

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// factsStore serves LatestFacts from memory, pausing after the device
// numbered pauseAfter; a what-if uses nothing else of the store.
type factsStore struct {
	store.Dashboard
	devices    []store.LatestFacts
	pauseAfter int
	pause      time.Duration
}

func (s *factsStore) LatestFacts(ctx context.Context, group string, fn func(store.LatestFacts) error) error {
	for i, lf := range s.devices {
		if err := fn(lf); err != nil {
			return err
		}
		if i+1 == s.pauseAfter {
			time.Sleep(s.pause)
		}
	}
	return nil
}

// fleet is n devices whose firewall is off: each newly fails firewall-on.
func fleet(t *testing.T, n int) []store.LatestFacts {
	t.Helper()
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	off := false
	b, err := proto.Marshal(&wardv1.Facts{
		Os:       &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
		Firewall: &wardv1.FirewallFacts{Collection: ok, Enabled: &off},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.LatestFacts
	for i := range n {
		id := string(rune('a' + i))
		out = append(out, store.LatestFacts{DeviceID: id, Hostname: "host-" + id, Facts: b, Failing: map[string]bool{}})
	}
	return out
}

func whatIfPage(t *testing.T, st store.Dashboard) (*handler, func(*whatIf) string) {
	t.Helper()
	h := &handler{cfg: Config{Now: time.Now}, st: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		pages: map[string]*template.Template{}}
	if err := h.parse(); err != nil {
		t.Fatal(err)
	}
	return h, func(wi *whatIf) string {
		w := httptest.NewRecorder()
		h.render(w, httptest.NewRequest("GET", "/policies", nil), "policies", page{Title: "Policies", Data: policiesData{WhatIf: wi}})
		return w.Body.String()
	}
}

func setWhatIfTimeout(t *testing.T, d time.Duration) {
	old := whatIfTimeout
	whatIfTimeout = d
	t.Cleanup(func() { whatIfTimeout = old })
}

// A what-if says how many devices it evaluated of how many; one that
// reaches its deadline stops evaluating, still counts the devices left,
// and is labelled a partial result.
func TestWhatIfDeadline(t *testing.T) {
	ctx := context.Background()
	draft, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}

	st := &factsStore{devices: fleet(t, 3)}
	h, render := whatIfPage(t, st)
	wi, err := h.whatIf(ctx, "staff", draft)
	if err != nil {
		t.Fatal(err)
	}
	if wi.Evaluated != 3 || wi.Total != 3 || wi.Partial || len(wi.Newly) != 3 {
		t.Fatalf("whole what-if = %+v, want 3 of 3 evaluated, 3 newly failing", wi)
	}
	if html := render(wi); !strings.Contains(html, `Evaluated <span id="whatif-done">3</span> of <span id="whatif-total">3</span> devices.`) ||
		strings.Contains(html, "partial") {
		t.Errorf("whole what-if page:\n%s", html)
	}

	// The deadline passes after the first device.
	setWhatIfTimeout(t, 200*time.Millisecond)
	st.pauseAfter, st.pause = 1, 400*time.Millisecond
	wi, err = h.whatIf(ctx, "staff", draft)
	if err != nil {
		t.Fatal(err)
	}
	if wi.Evaluated != 1 || wi.Total != 3 || !wi.Partial || len(wi.Newly) != 1 {
		t.Fatalf("what-if at its deadline = %+v, want 1 of 3 evaluated, partial", wi)
	}
	html := render(wi)
	for _, want := range []string{
		`Evaluated <span id="whatif-done">1</span> of <span id="whatif-total">3</span> devices`,
		`<strong id="whatif-partial">partial result</strong>, stopped at the 200ms deadline`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("partial what-if page lacks %q:\n%s", want, html)
		}
	}

	// Past its deadline before the first device: nothing evaluated, and
	// nothing said to pass.
	setWhatIfTimeout(t, -time.Second)
	st.pauseAfter = 0
	wi, err = h.whatIf(ctx, "staff", draft)
	if err != nil || wi.Evaluated != 0 || wi.Total != 3 || !wi.Partial || len(wi.Newly) != 0 || wi.Fixed != 0 {
		t.Fatalf("what-if past its deadline = %+v, %v", wi, err)
	}
}

func (s *factsStore) Groups(context.Context) ([]string, error)              { return nil, nil }
func (s *factsStore) Policies(context.Context) ([]store.GroupPolicy, error) { return nil, nil }

// The dashboard's upload refuses a policy over its cost budget, for a
// what-if as for applying it, with the file and the line of the rule
// that takes it over, and evaluates nothing.
func TestUploadRefusesOverBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: costly\nversion: 1\nrules:\n")
	for i := range 200 {
		fmt.Fprintf(&b, `  - id: r%d
    title: A rule
    family: disk_encryption
    platforms: [linux]
    require: disk.volumes.all(v, v.mount_point.contains("x") || v.device.contains("y") || v.chain.contains("z") || true)
    expected: x
    severity: low
    remediation: { en: { linux: x } }
`, i)
	}
	st := &factsStore{devices: fleet(t, 3)}
	h, _ := whatIfPage(t, st)
	for _, action := range []string{"whatif", "apply"} {
		form := url.Values{"group": {"staff"}, "document": {b.String()}, "action": {action}}
		r := httptest.NewRequest("POST", "/policies", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, store.Session{User: "ada", Role: store.RoleAdmin}))
		w := httptest.NewRecorder()
		h.policyUpload(w, r)
		page := w.Body.String()
		if w.Code != http.StatusUnprocessableEntity || !regexp.MustCompile(`draft\.yaml:\d+: rule &#34;r\d+&#34;: require takes the policy&#39;s worst-case cost to`).MatchString(page) ||
			strings.Contains(page, `id="whatif"`) {
			t.Errorf("%s: %d\n%s", action, w.Code, page)
		}
	}
}
