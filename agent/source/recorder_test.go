package source

import (
	"context"
	"errors"
	"testing"

	"github.com/wardhq/ward/agent/check"
)

// TestRecorderTrims: the collector reads the whole answer, the record
// keeps what the Trim keeps (or its error, which a replay returns), and
// reads no Trim names are recorded whole.
func TestRecorderTrims(t *testing.T) {
	ctx := context.Background()
	live := NewRecorded(check.Host{OS: "linux", Arch: "amd64"})
	live.AddFile("/var/log/h.log", []byte("a\nb\nc\n"))
	live.AddFile("/var/log/bad.log", []byte("junk\n"))
	live.AddFile("/etc/os-release", []byte("ID=debian\n"))
	live.AddCommand("rpm", []string{"-qa", "--last"}, 0, []byte("p1 date\np2 date\n"), nil)
	live.AddCommand("rpm", []string{"-q", "x"}, 0, []byte("x-1\n"), nil)
	last := func(data []byte, _ int64) ([]byte, error) { return data[len(data)-2:], nil }
	rec, err := NewRecorder(ctx, live,
		check.Trim{File: "/var/log/h.log", Keep: last},
		check.Trim{File: "/var/log/bad.log", Keep: func([]byte, int64) ([]byte, error) { return nil, errors.New("/var/log/bad.log: no date") }},
		check.Trim{Tool: "rpm", Args: []string{"-qa", "--last"}, Keep: func(d []byte, limit int64) ([]byte, error) {
			if limit != -1 {
				t.Errorf("a command's Keep got limit %d", limit)
			}
			return d[:8], nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := rec.ReadFile(ctx, "/var/log/h.log", 100); string(data) != "a\nb\nc\n" {
		t.Errorf("the collector read %q, not the whole file", data)
	}
	rec.ReadFile(ctx, "/var/log/bad.log", 100)
	rec.ReadFile(ctx, "/etc/os-release", 100)
	if res, _ := rec.Command(ctx, "rpm", "-qa", "--last"); string(res.Stdout) != "p1 date\np2 date\n" {
		t.Errorf("the collector read %q", res.Stdout)
	}
	rec.Command(ctx, "rpm", "-q", "x")

	replay := rec.Recorded()
	for _, tt := range []struct {
		read      func() ([]byte, error)
		want, err string
	}{
		{func() ([]byte, error) { return replay.ReadFile(ctx, "/var/log/h.log", 100) }, "c\n", ""},
		{func() ([]byte, error) { return replay.ReadFile(ctx, "/var/log/bad.log", 100) }, "", "/var/log/bad.log: no date"},
		{func() ([]byte, error) { return replay.ReadFile(ctx, "/etc/os-release", 100) }, "ID=debian\n", ""},
		{func() ([]byte, error) {
			r, err := replay.Command(ctx, "rpm", "-qa", "--last")
			return r.Stdout, err
		}, "p1 date\n", ""},
		{func() ([]byte, error) {
			r, err := replay.Command(ctx, "rpm", "-q", "x")
			return r.Stdout, err
		}, "x-1\n", ""},
	} {
		data, err := tt.read()
		if string(data) != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("replayed %q, %v; want %q, %q", data, err, tt.want, tt.err)
		}
	}
	reduced := map[string]bool{}
	for _, r := range replay.Records() {
		reduced[r.Path+r.Tool+r.Kind] = r.Reduced
	}
	if !reduced["/var/log/h.logfile"] || !reduced["/var/log/bad.logfile"] || reduced["/etc/os-releasefile"] {
		t.Errorf("reduced flags %v", reduced)
	}
}
