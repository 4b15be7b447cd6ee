package check_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/policies/texts"
)

// TestErrText: the reason is decided by the error's type, wrapped or not,
// never by its words.
func TestErrText(t *testing.T) {
	tests := []struct {
		err  error
		want texts.Text
	}{
		{fmt.Errorf("nftables: read generation: %w", fs.ErrPermission), texts.New(check.IDAdmin, "source", "nftables")},
		{fmt.Errorf("apt-get: not installed: %w", fs.ErrNotExist), texts.New(check.IDMissing, "source", "nftables")},
		{fmt.Errorf("ran too long: %w", context.DeadlineExceeded), texts.New(check.IDTimedOut, "source", "nftables")},
		{fmt.Errorf("wmi: %w", check.ErrUnsupported), texts.New(check.IDUnsupported, "source", "nftables")},
		{fmt.Errorf("x: %w", check.ErrNotRecorded), texts.New(check.IDNotRecorded, "source", "nftables")},
		{fmt.Errorf("x: %w", check.ErrNotAllowed), texts.New(check.IDNotAllowed, "source", "nftables")},
		{&check.ToolError{Tool: "apt-get", ExitCode: 100, Detail: "E: broken"}, texts.New(check.IDToolFailed, "source", "apt-get", "detail", "E: broken")},
		{fmt.Errorf("y: %w", &check.ToolError{Tool: "dnf", Truncated: true}), texts.New(check.IDOutputCut, "source", "dnf")},
		// Words about permissions are not a refusal.
		{errors.New("permission denied (you must be root)"), texts.New(check.IDReadFailed, "source", "nftables", "detail", "permission denied (you must be root)")},
	}
	for _, tt := range tests {
		got := check.ErrText("nftables", tt.err)
		if got.ID != tt.want.ID || fmt.Sprint(got.Params) != fmt.Sprint(tt.want.Params) {
			t.Errorf("ErrText(%v) = %+v, want %+v", tt.err, got, tt.want)
		}
	}
	if got := check.ErrText("", fmt.Errorf("open: %w", fs.ErrPermission)); got.ID != check.IDAdminHere {
		t.Errorf("no source, refused: %+v", got)
	}
	if got := check.ErrText("", errors.New("boom")); got.ID != check.IDDetail || got.Params["detail"] != "boom" {
		t.Errorf("no source, other: %+v", got)
	}
	if !check.NeedsAdmin([]texts.Text{check.At("/"), texts.New(check.IDAdminHere)}) || check.NeedsAdmin([]texts.Text{texts.New(check.IDMissing)}) {
		t.Error("NeedsAdmin")
	}
}

// TestOutputErrors: check.Output's failures are typed, and their English
// is what it was.
func TestOutputErrors(t *testing.T) {
	src := source.NewRecorded(check.Host{OS: "linux", Arch: "amd64"})
	src.AddCommand("apt-get", nil, 100, nil, []byte("E: Unmet dependencies.\n"))
	_, err := check.Output(context.Background(), src, "apt-get")
	if err == nil || err.Error() != "apt-get exited with status 100: E: Unmet dependencies." {
		t.Fatalf("err %v", err)
	}
	if got := check.ErrText("apt-get", err); got.ID != check.IDToolFailed || got.Params["detail"] != "E: Unmet dependencies." {
		t.Errorf("ErrText %+v", got)
	}
	src.AddError(source.Record{Kind: source.KindCommand, Tool: "dnf"}, fs.ErrNotExist)
	_, err = check.Output(context.Background(), src, "dnf")
	if got := check.ErrText("dnf", err); got.ID != check.IDMissing {
		t.Errorf("missing tool: %+v (%v)", got, err)
	}
}

// TestCollectionText: the helpers keep the English reason and add the
// messages; Reasoned errors carry theirs through wrapping.
func TestCollectionText(t *testing.T) {
	c := check.PartialText([]texts.Text{check.At("/home"), texts.New(check.IDMissing, "source", "/sys")}, "%s: gone", "/home")
	if c.GetReason() != "/home: gone" || len(c.GetReasonText()) != 2 || c.GetReasonText()[1].GetParams()["source"] != "/sys" {
		t.Errorf("PartialText %v", c)
	}
	if got, want := texts.Render("fr", texts.FromProto(c.GetReasonText())), "/home : /sys n'existe pas sur cet ordinateur"; got != want {
		t.Errorf("fr %q, want %q", got, want)
	}
	err := fmt.Errorf("outer: %w", check.Reasoned("inner", texts.New("reason.swap_file_no_mount")))
	if got := check.TextOf("x", err); len(got) != 1 || got[0].ID != "reason.swap_file_no_mount" || err.Error() != "outer: inner" {
		t.Errorf("TextOf %+v", got)
	}
	if got := check.TextOf("x", fs.ErrPermission); len(got) != 1 || got[0].ID != check.IDAdmin {
		t.Errorf("TextOf plain %+v", got)
	}
}

// TestReasonIDsExist: every reason id the collectors name (the constants
// here and every texts.New("...") literal in agent/check) is in the
// catalogue, so no staff member reads a bare id.
func TestReasonIDsExist(t *testing.T) {
	for _, id := range []string{check.IDAdmin, check.IDAdminHere, check.IDDetail, check.IDMissing, check.IDTimedOut,
		check.IDUnsupported, check.IDNotRecorded, check.IDNotAllowed, check.IDReadFailed, check.IDToolFailed,
		check.IDOutputCut, check.IDUnreadable, check.IDAt} {
		if !texts.Known(id) {
			t.Errorf("%s is not in the catalogue", id)
		}
	}
	literal := regexp.MustCompile(`texts\.New\("([^"]+)"`)
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllSubmatch(data, -1) {
			n++
			if !texts.Known(string(m[1])) {
				t.Errorf("%s: %s is not in the catalogue", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 40 {
		t.Errorf("found only %d message ids in agent/check; is the walk broken?", n)
	}
}
