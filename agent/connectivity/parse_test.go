package connectivity

import (
	"slices"
	"testing"
)

func TestAptList(t *testing.T) {
	in := `deb [ arch=amd64 trusted=yes ] http://spaced.example.org/debian stable main
deb [arch=amd64] mirror+https://mirrors.example.net/list.txt stable main
  deb   http://indented.example.org/ubuntu noble main   # comment
#deb http://commented.example.org/debian stable main
rpm http://not-apt.example.org/ x
deb
`
	want := []string{"http://spaced.example.org/debian", "mirror+https://mirrors.example.net/list.txt", "http://indented.example.org/ubuntu"}
	if got := aptList([]byte(in)); !slices.Equal(got, want) {
		t.Errorf("aptList = %q; want %q", got, want)
	}
}

func TestRepoFileContinuation(t *testing.T) {
	in := `[updates]
name=Updates
baseurl=https://one.example.org/updates/
	https://two.example.org/updates/
enabled=true

[off]
baseurl=https://off.example.org/
enabled=no
`
	want := []string{"https://one.example.org/updates/", "https://two.example.org/updates/"}
	if got := repoFile([]byte(in)); !slices.Equal(got, want) {
		t.Errorf("repoFile = %q; want %q", got, want)
	}
}

func TestURLHost(t *testing.T) {
	for in, want := range map[string]string{
		"http://deb.mirror.example.org/debian":         "deb.mirror.example.org",
		"HTTPS://Mirror.Example.ORG:8443/x":            "mirror.example.org",
		"mirror+http://m.example.org/mirrors.txt":      "m.example.org",
		"tor+http://deb.example.org/debian":            "",
		"http://abcdefghijklmnop.onion/debian":         "",
		"file:///srv/repo":                             "",
		"cdrom:[Debian]/":                              "",
		"https://$mirror.example.org/$releasever/":     "",
		"ftp://ftp.example.org/debian":                 "",
		"http://[2001:db8::1]/debian":                  "2001:db8::1",
		"https://download.example.org/?repo=$basearch": "download.example.org",
	} {
		if got := urlHost(in); got != want {
			t.Errorf("urlHost(%q) = %q; want %q", in, got, want)
		}
	}
}
