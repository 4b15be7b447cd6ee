package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// laptopReport is a full report of a Debian laptop as the service queues
// it: an encrypted root, an unencrypted USB stick mounted under the
// user's name, swap whose state is unknown; apt updates by count and
// digest (the policy reads no names); nftables on with ssh let in.
func laptopReport() *wardv1.Report {
	at := func(s string) *timestamppb.Timestamp {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return timestamppb.New(t)
	}
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	return &wardv1.Report{Sequence: 42, CollectedAt: at("2026-11-25T09:00:00Z"), AgentVersion: "0.9.0",
		PolicyName: "baseline", PolicyVersion: 3,
		Facts: &wardv1.Facts{CollectedAt: at("2026-11-25T09:00:00Z"),
			Os: &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12",
				Kernel: "6.1.0-28-amd64", Architecture: "amd64"},
			DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{
				{MountPoint: "/", Device: "/dev/mapper/vg-root", System: true, Encrypted: proto.Bool(true), Method: "LUKS2",
					Protection: wardv1.Protection_PROTECTION_ON},
				{MountPoint: "/media/alice/USB", Device: "/dev/sdb1", Removable: true, Encrypted: proto.Bool(false)},
				{Device: "/dev/zram0", Swap: true, Reason: "cannot read /sys/block/zram0"},
			}},
			PatchLevel: &wardv1.PatchFacts{Collection: ok, Manager: "apt", PendingUpdates: proto.Int32(143),
				PendingSecurityUpdates: proto.Int32(12), PendingDigest: []byte{0xab, 0xcd},
				LastUpdateInstalledAt: at("2026-11-20T10:00:09Z"), RebootRequired: proto.Bool(false)},
			Firewall: &wardv1.FirewallFacts{Collection: ok, Enabled: proto.Bool(true), Backend: "nftables",
				Profiles: []*wardv1.FirewallProfile{{Name: "inet filter input", Enabled: proto.Bool(true),
					Accepted: []*wardv1.FirewallSlice{{Protocol: "tcp", Ports: "22", Sources: "any"}}}},
				Reachable: []*wardv1.ReachableService{{Protocol: "tcp", Address: "0.0.0.0", Port: 22}, {Protocol: "tcp", Address: "::", Port: 22}}},
		},
		Results: []*wardv1.RuleResult{
			{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_PASS},
			{RuleId: "firewall-on", Status: wardv1.ResultStatus_RESULT_STATUS_PASS},
			{RuleId: "security-updates", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL},
			{RuleId: "automatic-updates", Status: wardv1.ResultStatus_RESULT_STATUS_UNKNOWN},
		},
		// A fixed stand-in: a real seal is random (ECDSA), and the summary
		// says only that there is one.
		Seal: &wardv1.ReportSeal{PrevHash: bytes.Repeat([]byte{1}, 32), KeyId: bytes.Repeat([]byte{2}, 32), Signature: []byte{3}},
	}
}

// TestPrivacySummaryGolden renders the summary of laptopReport in every
// shipped language (testdata/privacy/summary.LANG.golden; -update rewrites
// them), and checks in each that the facts of the report are there.
func TestPrivacySummaryGolden(t *testing.T) {
	dest := destination{collector: "ward.example.org:8443", enrolled: true, readable: true}
	for _, lang := range []string{"en", "fr", "es", "ar", "ru", "uk", "pt"} {
		t.Run(lang, func(t *testing.T) {
			var out bytes.Buffer
			renderPrivacy(&out, lang, laptopReport(), dest, "alice-laptop", time.UTC)
			got := out.String()
			for _, want := range []string{"ward.example.org:8443", "alice-laptop", "42", "2026-11-25 09:00", "Debian GNU/Linux 12, 6.1.0-28-amd64, amd64",
				"/ (/dev/mapper/vg-root)", "/media/alice/USB (/dev/sdb1)", "/dev/zram0", ": 143", ": 12", "2026-11-20 10:00", "tcp 22",
				"baseline", "0.9.0", "ward-agent privacy --json", "60"} {
				if !strings.Contains(got, want) {
					t.Errorf("%s lacks %q", lang, want)
				}
			}
			if strings.Contains(got, "{") || strings.Contains(got, "tcp 22, tcp 22") {
				t.Errorf("%s: a placeholder left or a service twice:\n%s", lang, got)
			}
			checktest.GoldenBytes(t, filepath.Join("testdata", "privacy", "summary."+lang+".golden"), out.Bytes())
		})
	}
}

// TestPrivacySummaryCases: what the summary says for an unchanged round,
// a laptop that is not enrolled, one whose enrolment this user cannot
// read, and names of pending updates that are sent.
func TestPrivacySummaryCases(t *testing.T) {
	unchanged := &wardv1.Report{Sequence: 8, CollectedAt: timestamppb.New(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)),
		PolicyName: "baseline", PolicyVersion: 3, BaseFacts: []byte{0x01, 0x02, 0xff}, ResultsAsBase: true}
	encrypting := laptopReport()
	encrypting.Facts.DiskEncryption.Volumes[1].Conversion = wardv1.Conversion_CONVERSION_ENCRYPTING
	names := laptopReport()
	names.Facts.PatchLevel.Pending = []*wardv1.PendingUpdate{{Name: "openssl", Version: "3.0.15-1~deb12u1", Security: true}}
	enrolled := destination{collector: "ward.example.org:8443", enrolled: true, readable: true}
	for _, tt := range []struct {
		name      string
		r         *wardv1.Report
		dest      destination
		want, not []string
	}{
		{"unchanged", unchanged, enrolled,
			[]string{"- Facts about this laptop: unchanged since the last report your organisation received, so only their fingerprint is sent: sha256:0102ff",
				"- the results of the rules: only a mark saying they are the same as in the last report"},
			[]string{"the system:", "disk encryption", "0 met"}},
		{"not enrolled", laptopReport(), destination{readable: true},
			[]string{"To whom: nobody. This laptop is not enrolled with an organisation, so Ward sends nothing.\n\n"}, []string{"ward.example.org", "When:"}},
		{"unreadable", laptopReport(), destination{enrolled: true},
			[]string{"only an administrator can read it; to see it: sudo ward-agent privacy"}, []string{"nobody"}},
		{"unsealed", unchanged, enrolled, nil, []string{"a seal"}},
		{"sealed", laptopReport(), enrolled,
			[]string{"- a seal: this laptop's signature over the report, linked to the report before it"}, nil},
		{"encrypting", encrypting, enrolled, []string{"    /media/alice/USB (/dev/sdb1): being encrypted\n"}, []string{"not encrypted"}},
		{"names", names, enrolled,
			[]string{"    the name and version of each waiting update (in the list: 1)"}, []string{"fingerprint"}},
		{"digest", laptopReport(), enrolled,
			[]string{"    not the names of the waiting updates: only their number and a fingerprint of the list",
				"- the result of each rule of the policy baseline (version 3): met: 2, not met: 1, not known: 1",
				"    /media/alice/USB (/dev/sdb1): not encrypted\n    /dev/zram0: not known\n",
				"    whether updates install automatically: not known\n"}, []string{"in the list"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			renderPrivacy(&out, "en", tt.r, tt.dest, "alice-laptop", time.UTC)
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("shows %q:\n%s", n, out.String())
				}
			}
		})
	}
}

// TestPrivacyCommand runs ward-agent privacy: the summary reads the
// collector's address from the state directory, --json prints the report
// exactly (it parses back to the same message), and the summary carries
// no raw JSON.
func TestPrivacyCommand(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	r := laptopReport()
	data, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, notify.LastReportFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	device := `{"device_id": "dev-1", "collector": "ward.example.org:8443", "group": "field"}`
	if err := os.WriteFile(filepath.Join(state, "device.json"), []byte(device), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "privacy", "--lang", "fr", "--status-dir", dir, "--state", state)
	if code != 0 {
		t.Fatalf("privacy = %d: %s", code, errOut)
	}
	if want := i18n.T("fr", "privacy.to", "collector", "ward.example.org:8443"); !strings.Contains(out, want+"\n") {
		t.Errorf("lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "COLLECTION_STATUS") || strings.Contains(out, `"`) {
		t.Errorf("the summary shows raw JSON:\n%s", out)
	}

	code, out, errOut = run(t, "privacy", "--json", "--status-dir", dir, "--state", state)
	if code != 0 {
		t.Fatalf("privacy --json = %d: %s", code, errOut)
	}
	var back wardv1.Report
	if err := protojson.Unmarshal([]byte(out), &back); err != nil {
		t.Fatalf("--json is not a report: %v\n%s", err, out)
	}
	if !proto.Equal(&back, r) {
		t.Errorf("--json differs from the report:\n%s", out)
	}
	for _, w := range []string{`"sequence": "42"`, `"pending_updates": 143`, `"pending_digest": "q80="`, `"rule_id": "security-updates"`, `"status": "RESULT_STATUS_FAIL"`} {
		if !strings.Contains(out, w) {
			t.Errorf("--json lacks %q", w)
		}
	}

	// Not enrolled: the state holds no device.json.
	code, out, _ = run(t, "privacy", "--lang", "en", "--status-dir", dir, "--state", t.TempDir())
	if code != 0 || !strings.Contains(out, "To whom: nobody.") {
		t.Errorf("not enrolled: %d\n%s", code, out)
	}
	// No report yet: --json prints nothing on stdout, the reason on stderr.
	code, out, errOut = run(t, "privacy", "--json", "--lang", "en", "--status-dir", t.TempDir())
	if code != 0 || out != "" || !strings.Contains(errOut, "nothing has been sent") {
		t.Errorf("no report: %d %q %q", code, out, errOut)
	}
}

// TestReadDestination: an enrolment record that cannot be read is
// "hidden", never "not enrolled".
func TestReadDestination(t *testing.T) {
	state := t.TempDir()
	if d := readDestination(state); d.enrolled || !d.readable {
		t.Errorf("empty state: %+v", d)
	}
	if err := os.Mkdir(filepath.Join(state, "device.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	if d := readDestination(state); !d.enrolled || d.readable || d.collector != "" {
		t.Errorf("unreadable device.json: %+v", d)
	}
}
