package cli

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/wardhq/ward/collector/server"
)

func TestHTTPFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte("  s3cret-metrics-token-0123\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	spaced := filepath.Join(dir, "spaced")
	os.WriteFile(spaced, []byte("two words in a token file\n"), 0o600)

	parse := func(args ...string) (server.HTTPOptions, error) {
		var o server.HTTPOptions
		f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		f.SetOutput(&strings.Builder{})
		httpFlags(f, &o)
		return o, f.Parse(args)
	}
	o, err := parse("--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "::ffff:192.168.0.0/112",
		"--trusted-proxy", "10.1.2.3/16", "--allowed-host", "ward.example.org", "--metrics-addr", "127.0.0.1:9100", "--metrics-token-file", good)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("10.1.0.0/16")}
	if len(o.TrustedProxies) != len(want) {
		t.Fatalf("trusted proxies = %v, want %v", o.TrustedProxies, want)
	}
	for i := range want {
		if o.TrustedProxies[i] != want[i] {
			t.Errorf("trusted proxy %d = %v, want %v", i, o.TrustedProxies[i], want[i])
		}
	}
	if o.MetricsToken != "s3cret-metrics-token-0123" || o.MetricsAddr != "127.0.0.1:9100" || len(o.AllowedHosts) != 1 || o.AllowedHosts[0] != "ward.example.org" {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{
		{"--trusted-proxy", "proxy.example"},
		{"--trusted-proxy", "10.0.0.0/33"},
		{"--metrics-token-file", short},
		{"--metrics-token-file", spaced},
		{"--metrics-token-file", filepath.Join(dir, "missing")},
	} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
