package cli

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wardhq/ward/collector/server"
)

// httpFlags adds serve's flags for the HTTP server.
func httpFlags(f *pflag.FlagSet, o *server.HTTPOptions) {
	f.StringArrayVar(&o.AllowedHosts, "allowed-host", nil, "Host header name the dashboard and /metrics answer to, others get 421 (repeatable; default the --hostname names and the --http-addr host); /healthz and /readyz answer any")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve /metrics on this address of its own instead of the HTTP listener")
	f.Var(tokenFileFlag{&o.MetricsToken}, "metrics-token-file", "file holding the bearer token /metrics requires (at least 16 characters); without it /metrics on the HTTP listener answers only direct loopback clients")
	f.Var(prefixesFlag{&o.TrustedProxies}, "trusted-proxy", "CIDR or address of a reverse proxy whose X-Forwarded-For is believed (repeatable; default none: the TCP peer is the client)")
}

// tokenFileFlag reads a secret from a file when the flag is set.
type tokenFileFlag struct{ token *string }

func (f tokenFileFlag) String() string { return "" }
func (f tokenFileFlag) Type() string   { return "file" }
func (f tokenFileFlag) Set(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 || len(tok) > 4096 || strings.ContainsAny(tok, " \t\r\n") {
		return fmt.Errorf("%s: want one token of 16 to 4096 characters without spaces", path)
	}
	*f.token = tok
	return nil
}

// prefixesFlag collects CIDRs; a bare address is a /32 or /128.
type prefixesFlag struct{ p *[]netip.Prefix }

func (f prefixesFlag) String() string {
	s := make([]string, len(*f.p))
	for i, p := range *f.p {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (f prefixesFlag) Type() string { return "cidr" }

func (f prefixesFlag) Set(v string) error {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		a, aerr := netip.ParseAddr(v)
		if aerr != nil {
			return fmt.Errorf("want a CIDR (10.0.0.0/8) or an address: %w", err)
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() {
		a, bits = a.Unmap(), max(bits-96, 0)
	}
	*f.p = append(*f.p, netip.PrefixFrom(a, bits).Masked())
	return nil
}
