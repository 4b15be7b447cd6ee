package install

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestLayoutPerOS(t *testing.T) {
	for goos, want := range map[string]Layout{
		"linux":   {"/usr/bin/ward-agent", "/etc/ward", "/var/lib/ward", "/etc/xdg/autostart/ward-notify.desktop"},
		"windows": {`C:\Program Files\Ward\ward-agent.exe`, `C:\ProgramData\Ward`, `C:\ProgramData\Ward`, ""},
		"darwin":  {"/usr/local/bin/ward-agent", "/Library/Application Support/Ward", "/Library/Application Support/Ward", "/Library/LaunchAgents/org.wardhq.ward.notify.plist"},
	} {
		l := layoutFor(goos)
		// StateDir comes from enroll.DefaultStateDir, which follows this OS.
		l.StateDir = want.StateDir
		if l != want {
			t.Errorf("%s: layout = %+v, want %+v", goos, l, want)
		}
	}
}

func TestServiceConfigRunsDaemonWithState(t *testing.T) {
	c := ServiceConfig("/usr/bin/ward-agent", "/var/lib/ward/")
	if c.Name != ServiceName || c.Executable != "/usr/bin/ward-agent" {
		t.Errorf("config = %+v", c)
	}
	if want := []string{"daemon", "--state", "/var/lib/ward"}; !slices.Equal(c.Arguments, want) {
		t.Errorf("arguments = %q, want %q", c.Arguments, want)
	}
}

func TestNotifierEntriesQuoteThePath(t *testing.T) {
	if got, want := NotifierCommand(`C:\Program Files\Ward\ward-agent.exe`), `"C:\Program Files\Ward\ward-agent.exe" notify`; got != want {
		t.Errorf("NotifierCommand = %s, want %s", got, want)
	}
	if got := DesktopEntry("/opt/my ward/ward-agent"); !strings.Contains(got, "\nExec=\"/opt/my ward/ward-agent\" notify\n") {
		t.Errorf("desktop entry Exec not quoted:\n%s", got)
	}
	if got := DesktopEntry("/usr/bin/ward-agent"); !strings.Contains(got, "\nExec=/usr/bin/ward-agent notify\n") {
		t.Errorf("desktop entry:\n%s", got)
	}
	if got := LaunchAgentPlist("/usr/local/bin/ward-agent"); !strings.Contains(got, "<string>/usr/local/bin/ward-agent</string>\n\t\t<string>notify</string>") {
		t.Errorf("launch agent:\n%s", got)
	}
}

type fakeLogger struct{ lines []string }

func (f *fakeLogger) Error(v ...any) error { f.lines = append(f.lines, "E "+v[0].(string)); return nil }
func (f *fakeLogger) Warning(v ...any) error {
	f.lines = append(f.lines, "W "+v[0].(string))
	return nil
}
func (f *fakeLogger) Info(v ...any) error           { f.lines = append(f.lines, "I "+v[0].(string)); return nil }
func (f *fakeLogger) Errorf(string, ...any) error   { return nil }
func (f *fakeLogger) Warningf(string, ...any) error { return nil }
func (f *fakeLogger) Infof(string, ...any) error    { return nil }

func TestServiceHandlerLevelsAndAttrs(t *testing.T) {
	f := &fakeLogger{}
	log := slog.New(NewServiceHandler(f, slog.LevelInfo)).With("device_id", "d1")
	log.Debug("dropped")
	log.Info("enrolled", "group", "field staff")
	log.WithGroup("report").Warn("queued", "seq", 3)
	log.ErrorContext(context.Background(), "failed", "err", "x=y")
	want := []string{
		`I enrolled device_id=d1 group="field staff"`,
		`W queued device_id=d1 report.seq=3`,
		`E failed device_id=d1 err="x=y"`,
	}
	if !slices.Equal(f.lines, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(f.lines, "\n"), strings.Join(want, "\n"))
	}
}
