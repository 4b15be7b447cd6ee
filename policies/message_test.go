package policies

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// messageFacts are facts that take the shipped policies down many paths:
// compliant, failing and unknown, per platform.
func messageFacts() map[string]*wardv1.Facts {
	out := map[string]*wardv1.Facts{}
	for _, pl := range Platforms {
		out[pl+"/compliant"] = compliantFacts(pl)

		f := compliantFacts(pl)
		for _, v := range f.DiskEncryption.Volumes {
			v.Encrypted, v.Protection, v.Conversion = ptr(false), wardv1.Protection_PROTECTION_OFF, wardv1.Conversion_CONVERSION_FULLY_DECRYPTED
		}
		f.Firewall.Enabled = ptr(false)
		for _, p := range f.Firewall.Profiles {
			p.Enabled = ptr(false)
		}
		f.Firewall.Reachable = []*wardv1.ReachableService{service("tcp", "0.0.0.0", 22, false, "any"), service("udp", "::", 5353, true, "fe80::/10"),
			service("tcp", "::", 8080, true, "fe80::/10"), service("tcp", "10.0.0.1", 3389, false, "10.0.0.0/8")}
		f.PatchLevel.PendingSecurityUpdates = ptr(int32(4))
		f.PatchLevel.RebootRequired, f.PatchLevel.AutomaticUpdates = ptr(true), ptr(false)
		f.PatchLevel.MetadataRefreshedAt = timestamppb.New(testNow.AddDate(0, 0, -40))
		f.Os.Version = "1.0"
		out[pl+"/failing"] = f

		f = compliantFacts(pl)
		for _, v := range f.DiskEncryption.Volumes {
			v.Encrypted, v.Reason = nil, "cannot read the header"
		}
		f.DiskEncryption.Collection = coll(partialStatus, "cannot read /proc/swaps: permission denied")
		f.Firewall.Collection = &wardv1.Collection{Status: failedStatus, Reason: "nft: needs root",
			ReasonText: []*wardv1.Text{{Id: "engine.detail", Params: map[string]string{"detail": "nft: needs root"}}}}
		f.PatchLevel.PendingSecurityUpdates = nil
		f.Os.Version, f.Os.Id = "", "plan9"
		out[pl+"/unknown"] = f

		f = compliantFacts(pl)
		f.PatchLevel.MetadataRefreshedAt = timestamppb.New(testNow.AddDate(0, 0, -40))
		f.DiskEncryption.Collection = coll(partialStatus, "cannot read /proc/swaps: permission denied")
		out[pl+"/stale"] = f

		f = compliantFacts(pl)
		f.DiskEncryption, f.Firewall, f.PatchLevel = nil, nil, &wardv1.PatchFacts{Collection: coll(unsupported, "")}
		out[pl+"/missing"] = f
	}
	f := compliantFacts("linux")
	f.Os.Platform = ""
	f.Os.Collection = coll(failedStatus, "host lookup failed")
	out["no-platform"] = f
	return out
}

// TestShippedMessages: on every path of messageFacts, every observed text
// and reason of the shipped policies is made of catalogue messages (no
// bare English literal), Observed and Reason are their English rendering,
// and only UNKNOWN has a reason.
func TestShippedMessages(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range Names() {
		p := mustEmbedded(t, name)
		for fname, facts := range messageFacts() {
			for _, r := range Evaluate(context.Background(), p, facts, Options{Now: testNow, Feed: testFeedInput}) {
				where := name + "/" + fname + "/" + r.RuleID
				if len(r.ObservedText) == 0 {
					t.Errorf("%s: no observed text", where)
				}
				for _, part := range append(slices.Clone(r.ObservedText), r.ReasonText...) {
					seen[part.ID] = true
					if !texts.Known(part.ID) {
						t.Errorf("%s: message %q is not in the catalogue", where, part.ID)
					}
					if part.ID == idLiteral {
						t.Errorf("%s: %q is a bare English literal", where, part.Params["text"])
					}
				}
				if got := texts.Render("en", r.ObservedText); got != r.Observed {
					t.Errorf("%s: Observed %q is not the English rendering %q", where, r.Observed, got)
				}
				if got := texts.Render("en", r.ReasonText); got != r.Reason {
					t.Errorf("%s: Reason %q is not the English rendering %q", where, r.Reason, got)
				}
				if (r.Status == StatusUnknown) != (len(r.ReasonText) > 0) {
					t.Errorf("%s: %s with reason %v", where, r.Status, r.ReasonText)
				}
			}
		}
	}
	// The paths above reach the messages the engine and the policies
	// use most; a message no path reaches is listed, so a new one gets a
	// path here.
	for _, id := range []string{"disk.volume_not_encrypted", "firewall.service_reachable", "firewall.service_reachable_anywhere",
		"firewall.service_may_be_reachable", "patch.security_pending", "patch.index_stale", "patch.restart_waiting", "patch.automatic_off",
		"feed.no_line", "os.version_unknown", "disk.volume_unknown_why", "engine.detail", "engine.platform_unknown_why",
		"engine.check_unsupported", "engine.not_collected", "firewall.not_filtered", "disk.some_volumes_unchecked"} {
		if !seen[id] {
			t.Errorf("no path produced %s", id)
		}
	}
}

// TestAgreedMessages: the ids and parameters the agent's goldens use.
func TestAgreedMessages(t *testing.T) {
	for id, want := range map[string][]string{
		"disk.volume_not_encrypted":  {"place"},
		"firewall.service_reachable": {"place", "protocol", "sources"},
		"patch.security_pending":     {"count"},
	} {
		if got := msgParams(id); !texts.Known(id) || !slices.Equal(got, want) {
			t.Errorf("%s: known %v, parameters %v, want %v", id, texts.Known(id), got, want)
		}
	}
	f := windowsFacts()
	f.DiskEncryption.Volumes[1].Encrypted = ptr(false)
	f.PatchLevel.PendingSecurityUpdates = ptr(int32(3))
	f.Firewall.Reachable = []*wardv1.ReachableService{service("tcp", "0.0.0.0", 445, false, "10.0.0.0/8")}
	results := Evaluate(context.Background(), mustEmbedded(t, "high-risk"), f, Options{Now: testNow, Feed: testFeedInput})
	for rule, want := range map[string][]texts.Text{
		"fixed-volumes-encrypted": {texts.New("disk.volume_encrypted_method", "place", "C:", "method", "BitLocker XTS-AES 128"),
			texts.New("disk.volume_not_encrypted", "place", "D:")},
		"no-reachable-services": {texts.New("firewall.service_reachable", "protocol", "tcp", "place", "0.0.0.0:445", "sources", "10.0.0.0/8")},
		"security-updates":      {texts.New("patch.security_pending", "count", "3")},
	} {
		r, ok := resultFor(results, rule)
		if !ok || r.Status != StatusFail || !slices.EqualFunc(r.ObservedText, want, sameText) {
			t.Errorf("%s: %s %+v, want FAIL %+v", rule, r.Status, r.ObservedText, want)
		}
	}
}

// TestRenderedInLanguages: what staff read, by value, in three languages.
func TestRenderedInLanguages(t *testing.T) {
	f := windowsFacts()
	f.DiskEncryption.Volumes[1].Encrypted = ptr(false)
	f.PatchLevel.PendingSecurityUpdates = ptr(int32(2))
	f.Firewall.Reachable = []*wardv1.ReachableService{service("tcp", "0.0.0.0", 445, false, "any")}
	results := Evaluate(context.Background(), mustEmbedded(t, "high-risk"), f, Options{Now: testNow, Feed: testFeedInput})
	lf := linuxFacts()
	lf.Os.Id, lf.Os.Version = "ubuntu", "20.04"
	results = append(results, Evaluate(context.Background(), mustEmbedded(t, "baseline"), lf, Options{Now: testNow, Feed: testFeedInput})...)
	for _, tt := range []struct{ rule, lang, observed, reason string }{
		{"fixed-volumes-encrypted", "fr", "C: est chiffré (BitLocker XTS-AES 128); D: n’est pas chiffré", ""},
		{"fixed-volumes-encrypted", "ar", "C: مشفّر (BitLocker XTS-AES 128)؛ D: غير مشفّر", ""},
		{"fixed-volumes-encrypted", "ru", "C: зашифрован (BitLocker XTS-AES 128); D: не зашифрован", ""},
		{"security-updates", "fr", "mises à jour de sécurité à installer : 2", ""},
		{"security-updates", "ru", "обновлений безопасности, ожидающих установки: 2", ""},
		{"no-reachable-services", "es", "tcp 0.0.0.0:445 accesible desde cualquier lugar", ""},
		{"automatic-updates", "uk", "автоматичні оновлення ввімкнено", ""},
		{"os-supported-linux", "pt", "ubuntu 20.04, o suporte normal terminou em 2025-05-29; o Ubuntu Pro (ESM) dura até 2030-04-02, mas o Ward não consegue saber se está ativado; (feed de versões 202611200000, com 5 dias)", ""},
		{"os-supported-linux", "ar", "ubuntu 20.04، انتهى الدعم القياسي في 2025-05-29؛ يستمر Ubuntu Pro (ESM) حتى 2030-04-02، لكن Ward لا يستطيع معرفة ما إذا كان مفعّلًا؛ (نشرة الإصدارات 202611200000، عمرها 5 يومًا)", ""},
	} {
		r, ok := resultFor(results, tt.rule)
		if !ok {
			t.Errorf("%s: no result", tt.rule)
			continue
		}
		if got := texts.Render(tt.lang, r.ObservedText); got != tt.observed {
			t.Errorf("%s in %s: observed %q, want %q", tt.rule, tt.lang, got, tt.observed)
		}
		if got := texts.Render(tt.lang, r.ReasonText); got != tt.reason {
			t.Errorf("%s in %s: reason %q, want %q", tt.rule, tt.lang, got, tt.reason)
		}
	}
}

// TestCollectionReasonText: a collection's own messages reach the result
// as they are; its English reason alone is a technical detail.
func TestCollectionReasonText(t *testing.T) {
	p := mustEmbedded(t, "baseline")
	f := linuxFacts()
	f.Firewall.Collection = &wardv1.Collection{Status: failedStatus, Reason: "nft needs root",
		ReasonText: []*wardv1.Text{{Id: "reason.needs_admin", Params: map[string]string{"tool": "nft"}}}}
	f.DiskEncryption.Collection = coll(failedStatus, "lsblk timed out")
	results := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
	fw, _ := resultFor(results, "firewall-on")
	if want := []texts.Text{texts.New("reason.needs_admin", "tool", "nft")}; !slices.EqualFunc(fw.ReasonText, want, sameText) {
		t.Errorf("firewall reason %+v, want the collection's %+v", fw.ReasonText, want)
	}
	disk, _ := resultFor(results, "disk-encrypted")
	if want := []texts.Text{detail("lsblk timed out")}; !slices.EqualFunc(disk.ReasonText, want, sameText) || disk.Reason != "lsblk timed out" {
		t.Errorf("disk reason %+v (%q), want %+v", disk.ReasonText, disk.Reason, want)
	}
	if got, want := texts.Render("fr", disk.ReasonText), "détail technique (en anglais) : lsblk timed out"; got != want {
		t.Errorf("fr: %q, want %q", got, want)
	}
}

// TestCustomPolicyMessages: a custom policy's own words stay as written;
// msg() and unknown(msg()) work in it; a message the catalogue does not
// have, or given the wrong parameters, is refused at its line.
func TestCustomPolicyMessages(t *testing.T) {
	const doc = `name: custom
version: 1
rules:
  - id: words
    title: Own words
    family: patch_level
    platforms: [linux]
    require: patch.pending_security_updates == 0 || unknown("our own reason")
    observed: '"our own words"'
    expected: none pending
    severity: low
    remediation: {en: {linux: update}}
  - id: messages
    title: Messages
    family: patch_level
    platforms: [linux]
    require: patch.pending_security_updates == 0 || unknown(msg("patch.restart_waiting"))
    observed: '[msg("patch.security_pending", {"count": patch.pending_security_updates})] + [msg("patch.automatic_on")]'
    expected: none pending
    severity: low
    remediation: {en: {linux: update}}
`
	p, err := Parse("custom.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f := linuxFacts()
	f.PatchLevel.PendingSecurityUpdates = ptr(int32(5))
	results := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
	if r, _ := resultFor(results, "words"); r.Observed != "our own words" || texts.Render("fr", r.ObservedText) != "our own words" {
		t.Errorf("words: %q / %+v", r.Observed, r.ObservedText)
	}
	if r, _ := resultFor(results, "messages"); texts.Render("fr", r.ObservedText) != "mises à jour de sécurité à installer : 5; les mises à jour automatiques sont activées" {
		t.Errorf("messages: %q", texts.Render("fr", r.ObservedText))
	}
	f.PatchLevel.PendingSecurityUpdates = nil
	results = Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
	if r, _ := resultFor(results, "messages"); r.Status != StatusUnknown || !strings.HasPrefix(r.Reason, `the fact "pending_security_updates" was not collected`) {
		t.Errorf("messages: %s %q", r.Status, r.Reason)
	}
	f.PatchLevel.PendingSecurityUpdates = ptr(int32(1))
	results = Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
	if r, _ := resultFor(results, "words"); r.Status != StatusUnknown || r.Reason != "our own reason" {
		t.Errorf("words: %s %q", r.Status, r.Reason)
	}
	if r, _ := resultFor(results, "messages"); r.Status != StatusUnknown ||
		texts.Render("ru", r.ReasonText) != "нужно перезагрузить компьютер, чтобы завершить установку обновлений" {
		t.Errorf("messages: %s %q", r.Status, texts.Render("ru", r.ReasonText))
	}

	for _, tt := range []struct{ expr, line, reason string }{
		{`unknown(msg("disk.no_such_thing"))`, "custom.yaml:8:", `msg: "disk.no_such_thing" is not a message of the catalogue`},
		{`unknown(msg("patch.security_pending"))`, "custom.yaml:8:", `msg "patch.security_pending" needs its parameters: count`},
		{`unknown(msg("patch.security_pending", {"n":1}))`, "custom.yaml:8:", `msg "patch.security_pending" takes the parameters count, not n`},
		{`unknown(msg(os.id))`, "custom.yaml:8:", `msg needs the message id as a literal text`},
	} {
		bad := strings.Replace(doc, `unknown("our own reason")`, tt.expr, 1)
		_, err := Parse("custom.yaml", []byte(bad))
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.line) || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: %v, want %s ... %s", tt.expr, err, tt.line, tt.reason)
		}
	}
	bad := strings.Replace(doc, `observed: '"our own words"'`, `observed: 'msg("patch.automatic_on") == msg("patch.automatic_on")'`, 1)
	if _, err := Parse("custom.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "observed must give") {
		t.Errorf("an observed condition: %v", err)
	}
}

// TestCatalogueGlossary holds the catalogue's messages to the glossary.
func TestCatalogueGlossary(t *testing.T) {
	for _, id := range texts.IDs() {
		en, _ := texts.Message("en", id)
		for _, lang := range i18n.Languages[1:] {
			s, _ := texts.Message(lang, id)
			for _, bad := range glossaryCheck(en, lang, s) {
				t.Errorf("message %s in %s %s: %q", id, lang, bad, s)
			}
		}
	}
}

// FuzzMsg: msg() never panics; it gives a message of the catalogue with
// exactly the parameters given, or an error; and a volume named by any
// text is described with that text as data.
func FuzzMsg(f *testing.F) {
	f.Add("disk.volume_not_encrypted", "place", "/home")
	f.Add("patch.security_pending", "count", "3")
	f.Add("no.such", "x", "")
	f.Add("", "", "{place}")
	p := mustEmbedded(f, "high-risk")
	f.Fuzz(func(t *testing.T, id, name, value string) {
		v := newMessage(types.String(id), types.DefaultTypeAdapter.NativeToValue(map[string]any{name: value}))
		if m, ok := v.(message); ok {
			if !texts.Known(id) || m.ID != id || len(m.Params) != 1 || m.Params[name] != value {
				t.Fatalf("msg(%q, {%q: %q}) = %+v", id, name, value, m.Text)
			}
		} else if !types.IsError(v) {
			t.Fatalf("msg(%q) gave %v", id, v)
		} else if texts.Known(id) {
			t.Fatalf("msg(%q, {%q: %q}) failed: %v", id, name, value, v)
		}
		facts := linuxFacts()
		facts.DiskEncryption.Volumes[0].MountPoint, facts.DiskEncryption.Volumes[0].Device = value, ""
		facts.DiskEncryption.Volumes[0].Encrypted = ptr(false)
		r, _ := resultFor(Evaluate(context.Background(), p, facts, Options{Now: testNow, Feed: testFeedInput}), "fixed-volumes-encrypted")
		if r.Status != StatusFail && r.Status != StatusUnknown {
			t.Fatalf("an unencrypted volume %q: %s", value, r.Status)
		}
		if r.Observed != texts.Render("en", r.ObservedText) || len(r.ObservedText) == 0 {
			t.Fatalf("observed %q is not the rendering of %+v", r.Observed, r.ObservedText)
		}
	})
}

// TestShippedNoLiterals: no expression of a shipped policy shows its own
// English words: every observed expression gives messages and every
// unknown() takes one (a walk of the checked expressions, so paths no
// facts reach count too).
func TestShippedNoLiterals(t *testing.T) {
	for _, name := range Names() {
		for _, r := range mustEmbedded(t, name).Rules {
			if r.literals > 0 {
				t.Errorf("%s: rule %s shows %d plain English texts; use msg()", name, r.ID, r.literals)
			}
		}
	}
	p, err := Parse("custom.yaml", []byte(`name: custom
version: 1
rules:
  - id: words
    title: Own words
    family: patch_level
    platforms: [linux]
    require: patch.pending_security_updates == 0 || unknown("our own reason")
    observed: '"our own words"'
    expected: none pending
    severity: low
    remediation: {en: {linux: update}}
`))
	if err != nil || p.Rules[0].literals != 2 {
		t.Errorf("a custom policy's own words are not counted: %v, %+v", err, p)
	}
}

// TestDescribeVolume: every state of a volume, by value, with every
// message in the catalogue.
func TestDescribeVolume(t *testing.T) {
	for _, tt := range []struct {
		v    map[string]any
		want string
	}{
		{map[string]any{"mount_point": "c:", "encrypted": false}, "C: is not encrypted"},
		{map[string]any{"device": "/dev/sdb1", "encrypted": true, "protection": "on", "method": "LUKS2"}, "/dev/sdb1 is encrypted (LUKS2)"},
		{map[string]any{"encrypted": true, "protection": "on"}, "? is encrypted"},
		{map[string]any{"mount_point": "/", "device": "/dev/vda2"}, "cannot tell whether / (/dev/vda2) is encrypted"},
		{map[string]any{"mount_point": "/", "reason_text": []any{map[string]any{"id": "engine.detail", "params": map[string]any{"detail": "no header"}}}},
			"cannot tell whether / is encrypted: no header"},
		{map[string]any{"mount_point": "C:", "encrypted": true, "protection": "suspended", "method": "BitLocker XTS-AES 256"}, "BitLocker protection is suspended on C:"},
		{map[string]any{"mount_point": "/", "encrypted": true, "protection": "suspended"}, "encryption protection is suspended on /"},
		{map[string]any{"mount_point": "C:", "encrypted": true, "conversion": "decrypting", "percent_encrypted": 40.0}, "C: is being decrypted (40% still encrypted)"},
		{map[string]any{"mount_point": "C:", "encrypted": true, "conversion": "decryption_paused"}, "C: is being decrypted"},
		{map[string]any{"mount_point": "C:", "encrypted": false, "conversion": "encryption_paused", "percent_encrypted": 12.4}, "encryption of C: is paused (12% encrypted)"},
		{map[string]any{"mount_point": "C:", "encrypted": false, "conversion": "encryption_paused"}, "encryption of C: is paused"},
		{map[string]any{"mount_point": "C:", "encrypted": false, "conversion": "encrypting"}, "C: is being encrypted"},
		{map[string]any{"mount_point": "C:", "encrypted": true, "protection": "off"}, "C: is encrypted but its protection is off"},
		{map[string]any{"mount_point": "/", "encrypted": true, "method": "LUKS1"}, "/ is encrypted (LUKS1), but whether its protection is on is not known"},
		{map[string]any{"mount_point": "/", "encrypted": true}, "/ is encrypted, but whether its protection is on is not known"},
	} {
		parts := describeVolume(tt.v)
		for _, p := range parts {
			if !texts.Known(p.ID) {
				t.Errorf("%v: message %s is not in the catalogue", tt.v, p.ID)
			}
		}
		if got := texts.Render("en", parts); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.v, got, tt.want)
		}
	}
}

// TestGoMessageIDs: every message id the engine's Go code names exists
// (an id built with a suffix, "_percent" or "_method", exists with and
// without it).
func TestGoMessageIDs(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	idPattern := regexp.MustCompile(`"((?:engine|disk|firewall|patch|os)\.[a-z_]+)"`)
	n := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), `"github.com/wardhq/ward/policies/texts"`) {
			continue // no messages (reads.go names facts such as "patch.pending")
		}
		for _, m := range idPattern.FindAllSubmatch(src, -1) {
			id := string(m[1])
			n++
			if !texts.Known(id) {
				t.Errorf("%s names %s, which is not in the catalogue", file, id)
			}
			for _, suffix := range []string{"_percent", "_method"} {
				if strings.Contains(string(src), `withPercent("`+id+`")`) && suffix == "_percent" ||
					strings.Contains(string(src), `withMethod("`+id+`")`) && suffix == "_method" {
					if !texts.Known(id + suffix) {
						t.Errorf("%s builds %s%s, which is not in the catalogue", file, id, suffix)
					}
				}
			}
		}
	}
	if n < 40 {
		t.Errorf("found only %d message ids in the engine's code", n)
	}
}
