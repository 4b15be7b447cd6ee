package firewall

import (
	"context"
	"io/fs"
	"slices"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/policies/texts"
)

// TestLinuxReasonText: what staff read when the Linux firewall rules
// cannot be read, decided by the errors' types.
func TestLinuxReasonText(t *testing.T) {
	compat := check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "filter", Chains: []check.NftChain{
		{Name: "INPUT", Type: "filter", Hook: "input", Priority: prio(0), Policy: "accept", Rules: []check.NftRule{
			rule([]check.NftExpr{{Kind: "match", Name: "conntrack"}}, v("accept"))}}}}}}

	// Not root: the kernel refuses the netlink dump and iptables-save is
	// not installed. The refusal is all staff need to read.
	got := Collect(context.Background(), linuxSource(nil, nil), "linux")
	want := []string{"reason.firewall_rules_unreadable", "reason.needs_admin source=nftables"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("not root: reason_text %q, want %q", g, want)
	}
	if !check.NeedsAdmin(texts.FromProto(got.Collection.GetReasonText())) {
		t.Error("not root: NeedsAdmin is false")
	}
	if got.Collection.GetReason() == "" {
		t.Error("not root: the English reason is gone")
	}
	if s, want := texts.Render("en", texts.FromProto(got.Collection.GetReasonText())),
		"Ward could not read the firewall rules: only an administrator can read nftables, and Ward was not running as one"; s != want {
		t.Errorf("en: %q\nwant %q", s, want)
	}
	if s, want := texts.Render("fr", texts.FromProto(got.Collection.GetReasonText())),
		"Ward n'a pas pu lire les règles du pare-feu : seul un administrateur peut lire nftables, et Ward ne fonctionnait pas en tant qu'administrateur"; s != want {
		t.Errorf("fr: %q\nwant %q", s, want)
	}
	want = []string{"reason.firewall_accepts_unknown"}
	if g := checktest.Texts(got.ServicesCollection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("not root: services reason_text %q, want %q", g, want)
	}

	// No netlink on this kernel and no iptables: each tool's own reason,
	// and nothing about rights.
	src := source.NewRecorded(check.Host{OS: "linux", Arch: "amd64"})
	src.AddError(source.Record{Kind: source.KindNftables}, check.ErrUnsupported)
	src.AddError(source.Record{Kind: source.KindCommand, Tool: "iptables-save"}, fs.ErrNotExist)
	src.AddError(source.Record{Kind: source.KindCommand, Tool: "ip6tables-save"}, fs.ErrNotExist)
	got = Collect(context.Background(), src, "linux")
	want = []string{"reason.firewall_rules_unreadable", "reason.not_supported source=nftables",
		"reason.missing source=iptables-save", "reason.missing source=ip6tables-save"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("no netlink: reason_text %q, want %q", g, want)
	}
	if check.NeedsAdmin(texts.FromProto(got.Collection.GetReasonText())) {
		t.Error("no netlink: NeedsAdmin is true")
	}

	// A rule nft cannot decode: the family is uncertain, with the model's
	// words as the detail.
	got = Collect(context.Background(), linuxSource(&compat, nil), "linux")
	g := checktest.Texts(got.Collection.GetReasonText())
	if len(g) != 1 || got.Collection.GetReasonText()[0].GetId() != "reason.firewall_family_unsure" ||
		got.Collection.GetReasonText()[0].GetParams()["family"] != "IPv4" || got.Collection.GetReasonText()[0].GetParams()["detail"] == "" {
		t.Errorf("compat: reason_text %q", g)
	}

	// Listening sockets refused: the services are unknown for lack of rights.
	ok := inetInput("drop", nil)
	src = linuxSource(&ok, nil)
	src.AddError(source.Record{Kind: source.KindListening}, fs.ErrPermission)
	got = Collect(context.Background(), src, "linux")
	want = []string{"reason.sockets_unreadable", "reason.needs_admin source=/proc/net"}
	if g := checktest.Texts(got.ServicesCollection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("sockets: reason_text %q, want %q", g, want)
	}
	for _, id := range []string{"reason.firewall_rules_unreadable", "reason.needs_admin", "reason.sockets_unreadable"} {
		if !texts.Known(id) {
			t.Errorf("%s is not in the catalogue", id)
		}
	}
}

// TestDarwinReasonText: the macOS firewall's reasons, on captured
// socketfilterfw output with one answer refused or failing.
func TestDarwinReasonText(t *testing.T) {
	src := alfSource(t, "block-all")
	src.AddError(source.Record{Kind: source.KindCommand, Tool: "socketfilterfw", Args: alfBlockAllArgs}, fs.ErrPermission)
	got := Collect(context.Background(), src, "darwin")
	want := []string{"reason.alf_setting_unknown setting=socketfilterfw --getblockall", "reason.needs_admin source=socketfilterfw"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("block-all refused: reason_text %q, want %q", g, want)
	}
	if s, want := texts.Render("ru", texts.FromProto(got.Collection.GetReasonText())),
		"неизвестна одна из настроек брандмауэра macOS (socketfilterfw --getblockall): прочитать socketfilterfw может только администратор, а Ward был запущен не от имени администратора"; s != want {
		t.Errorf("ru: %q\nwant %q", s, want)
	}

	src = alfSource(t, "block-all")
	src.AddCommand("socketfilterfw", alfGlobalStateArgs, 1, []byte("Firewall is enabled. (State = 1)\n"), []byte("error"))
	got = Collect(context.Background(), src, "darwin")
	want = []string{"reason.alf_unknown", "reason.tool_failed detail=error source=socketfilterfw"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("global state failed: reason_text %q, want %q", g, want)
	}
}
