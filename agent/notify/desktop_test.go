package notify

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
)

// TestSessionUsers reads a session tree as logind writes it: only local,
// open sessions of class user make desktop users, each uid once.
func TestSessionUsers(t *testing.T) {
	got, err := SessionUsers(filepath.Join("testdata", "logind", "sessions"))
	if err != nil {
		t.Fatal(err)
	}
	want := []User{{UID: 1000, Name: "amina"}, {UID: 1004, Name: "lena"}}
	if !slices.Equal(got, want) {
		t.Errorf("SessionUsers = %+v, want %+v", got, want)
	}
	if _, err := SessionUsers(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no session directory: err = %v, want fs.ErrNotExist", err)
	}
}

func TestParseSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   string
		ok     bool
		local  bool
		wantID int
	}{
		{"local user", "UID=1000\nUSER=a\nSTATE=active\nREMOTE=0\nCLASS=user\n", true, true, 1000},
		{"no REMOTE line", "UID=1000\nCLASS=user\n", true, true, 1000},
		{"remote", "UID=1000\nREMOTE=1\nCLASS=user\n", true, false, 1000},
		{"remote as a word", "UID=1000\nREMOTE=yes\nCLASS=user\n", true, false, 1000},
		{"empty REMOTE counts as remote", "UID=1000\nREMOTE=\nCLASS=user\n", true, false, 1000},
		{"greeter", "UID=120\nREMOTE=0\nCLASS=greeter\n", true, false, 120},
		{"lock screen", "UID=1000\nREMOTE=0\nCLASS=lock-screen\n", true, false, 1000},
		{"no class", "UID=1000\nREMOTE=0\n", true, false, 1000},
		{"closing", "UID=1000\nREMOTE=0\nCLASS=user\nSTATE=closing\n", true, false, 1000},
		{"comment is not a key", "#UID=5\nUID=7\nCLASS=user\n", true, true, 7},
		{"no UID", "USER=a\nCLASS=user\n", false, false, 0},
		{"bad UID", "UID=abc\nCLASS=user\n", false, false, 0},
		{"negative UID", "UID=-1\nCLASS=user\n", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := parseSession([]byte(tc.data))
			if ok != tc.ok || s.local() != tc.local || s.UID != tc.wantID {
				t.Errorf("parseSession = %+v, ok %v, local %v; want ok %v, local %v, uid %d", s, ok, s.local(), tc.ok, tc.local, tc.wantID)
			}
		})
	}
}
