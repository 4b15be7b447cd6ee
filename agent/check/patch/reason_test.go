package patch

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestReasonText: what staff read when pending updates cannot be told, on
// captured apt-get and Windows Update outputs.
func TestReasonText(t *testing.T) {
	debian := &wardv1.OSFacts{Platform: "linux", Id: "debian", Version: "12"}
	refreshed := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

	s := debianSource(t, "debian12-none", refreshed)
	s.missingTool("apt-get", aptSimulateArgs)
	got := Collect(context.Background(), s, debian)
	want := []string{"reason.patch_pending_unknown", "reason.missing source=apt-get"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("apt-get missing: %q, want %q", g, want)
	}
	if r, want := texts.Render("pt", texts.FromProto(got.Collection.GetReasonText())),
		"não se sabe que atualizações estão à espera: apt-get não existe neste computador"; r != want {
		t.Errorf("pt: %q\nwant %q", r, want)
	}

	s = debianSource(t, "debian12-none", refreshed)
	s.cmd("apt-get", aptSimulateArgs, 100, "apt/debian12-unmet.txt", "apt/debian12-unmet.stderr")
	got = Collect(context.Background(), s, debian)
	rt := got.Collection.GetReasonText()
	if len(rt) != 2 || rt[1].GetId() != "reason.tool_failed" || rt[1].GetParams()["source"] != "apt-get" ||
		rt[1].GetParams()["detail"] != "E: Unmet dependencies. Try 'apt --fix-broken install' with no packages (or specify a solution)." {
		t.Errorf("apt-get unmet: %q", checktest.Texts(rt))
	}

	// A history log only root may read: the refusal, typed, without a
	// source (it may be either log).
	s = debianSource(t, "debian12-none", refreshed)
	s.AddError(source.Record{Kind: source.KindFile, Path: aptHistoryPath}, fmt.Errorf("open %s: %w", aptHistoryPath, fs.ErrPermission))
	s.AddError(source.Record{Kind: source.KindFile, Path: dpkgLogPath}, fmt.Errorf("open %s: %w", dpkgLogPath, fs.ErrPermission))
	got = Collect(context.Background(), s, debian)
	want = []string{"reason.patch_last_install_unknown", "reason.needs_admin_here"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("history refused: %q, want %q", g, want)
	}

	got = Collect(context.Background(), windowsFake(t, "search-offline"), &wardv1.OSFacts{Platform: "windows"})
	want = []string{"reason.patch_search_failed detail=Exception from HRESULT: 0x8024402C"}
	if g := checktest.Texts(got.Collection.GetReasonText()); !slices.Equal(g, want) {
		t.Errorf("Windows Update offline: %q, want %q", g, want)
	}
}
