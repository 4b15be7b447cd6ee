package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
)

// get sends a GET with the given Host and headers (key, value pairs).
func get(t *testing.T, url, host string, kv ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// echoWeb is a stand-in dashboard that reads the whole body.
func echoWeb(cfg *server.Config) {
	cfg.Web = func(store.Store) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Write(b)
		}), nil
	}
}

func TestHTTPRefusesOtherHosts(t *testing.T) {
	c := servertest.Start(t, echoWeb)
	base := "http://" + c.HTTPAddr
	_, port, _ := net.SplitHostPort(c.HTTPAddr)
	for _, tc := range []struct {
		path, host string
		want       int
	}{
		{"/metrics", "", http.StatusOK},                  // 127.0.0.1:port, the listen host
		{"/metrics", "localhost:" + port, http.StatusOK}, // a --hostname
		{"/metrics", "LOCALHOST.", http.StatusOK},        // names are case-insensitive, trailing dot
		{"/metrics", "attacker.example:" + port, http.StatusMisdirectedRequest},
		{"/metrics", "127.0.0.1.attacker.example", http.StatusMisdirectedRequest},
		{"/", "attacker.example", http.StatusMisdirectedRequest},
		{"/devices", "[::2]:" + port, http.StatusMisdirectedRequest},
		{"/", "", http.StatusOK},
		{"/healthz", "attacker.example", http.StatusOK}, // load balancers
		{"/readyz", "attacker.example", http.StatusOK},
	} {
		if got, body := get(t, base+tc.path, tc.host); got != tc.want {
			t.Errorf("GET %s Host %q: %d, want %d (%q)", tc.path, tc.host, got, tc.want, body)
		}
	}

	// --allowed-host replaces the defaults.
	c2 := servertest.Start(t, echoWeb, func(cfg *server.Config) { cfg.HTTP.AllowedHosts = []string{"ward.example.org"} })
	if got, _ := get(t, "http://"+c2.HTTPAddr+"/", "ward.example.org"); got != http.StatusOK {
		t.Errorf("allowed host: %d", got)
	}
	if got, _ := get(t, "http://"+c2.HTTPAddr+"/", ""); got != http.StatusMisdirectedRequest {
		t.Errorf("listen host not in --allowed-host: %d, want 421", got)
	}
}

func TestMetricsWithoutTokenOnlyForDirectLoopback(t *testing.T) {
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	url := "http://" + c.HTTPAddr + "/metrics"
	if got, body := get(t, url, ""); got != http.StatusOK || !strings.Contains(body, "ward_collector_reports_received_total") {
		t.Fatalf("direct loopback: %d %q", got, body)
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"} {
		if got, _ := get(t, url, "", h, "203.0.113.7"); got != http.StatusForbidden {
			t.Errorf("loopback peer forwarding (%s): %d, want 403", h, got)
		}
	}
	// A trusted proxy is a proxy even on loopback.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	res, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("from a trusted proxy's address: %d, want 403", res.StatusCode)
	}
}

func TestMetricsToken(t *testing.T) {
	const tok = "metrics-token-0123456789"
	c := servertest.Start(t, func(cfg *server.Config) { cfg.HTTP.MetricsToken = tok })
	url := "http://" + c.HTTPAddr + "/metrics"
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + tok, "Bearer " + tok + "x", "Bearer " + tok[:len(tok)-1]} {
		if got, _ := get(t, url, "", "Authorization", auth); got != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, got)
		}
	}
	if got, body := get(t, url, "", "Authorization", "Bearer "+tok); got != http.StatusOK || !strings.Contains(body, "ward_collector_") {
		t.Errorf("right token: %d", got)
	}
	// With a token, forwarded requests are fine (Prometheus behind a proxy).
	if got, _ := get(t, url, "", "Authorization", "Bearer "+tok, "X-Forwarded-For", "203.0.113.7"); got != http.StatusOK {
		t.Errorf("right token, forwarded: %d", got)
	}
	if got, _ := get(t, url, "attacker.example", "Authorization", "Bearer "+tok); got != http.StatusMisdirectedRequest {
		t.Errorf("right token, other Host: %d, want 421", got)
	}
}

func TestMetricsOnTheirOwnListener(t *testing.T) {
	c := servertest.Start(t, echoWeb, func(cfg *server.Config) { cfg.HTTP.MetricsAddr = "127.0.0.1:0" })
	ma := c.Server().MetricsAddr()
	if ma == "" || ma == c.HTTPAddr {
		t.Fatalf("MetricsAddr = %q (HTTP %s)", ma, c.HTTPAddr)
	}
	if got, body := get(t, "http://"+ma+"/metrics", ""); got != http.StatusOK || !strings.Contains(body, "ward_collector_") {
		t.Errorf("metrics listener: %d", got)
	}
	if got, _ := get(t, "http://"+ma+"/metrics", "attacker.example"); got != http.StatusMisdirectedRequest {
		t.Errorf("metrics listener, other Host: %d, want 421", got)
	}
	if got, body := get(t, "http://"+c.HTTPAddr+"/metrics", ""); strings.Contains(body, "ward_collector_") {
		t.Errorf("main listener still serves metrics: %d", got)
	}
	if got, _ := get(t, "http://"+ma+"/", ""); got != http.StatusNotFound {
		t.Errorf("metrics listener serves the dashboard: %d", got)
	}
}

// closedWithin reports whether the server closes conn (or answers and
// closes) within d.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) bool {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

func TestHTTPStalledClientsAreCut(t *testing.T) {
	c := servertest.Start(t, echoWeb, func(cfg *server.Config) {
		cfg.HTTP.ReadTimeout = time.Second
		cfg.HTTP.IdleTimeout = time.Second
	})
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", c.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	// A body that stalls after three of its 1000 bytes.
	conn := dial()
	io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nabc")
	if !closedWithin(t, conn, 5*time.Second) {
		t.Error("a stalled body held the connection past 5 s (ReadTimeout 1 s)")
	}

	// A kept-alive connection left idle after one request.
	conn = dial()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", res, err)
	}
	if !closedWithin(t, conn, 5*time.Second) {
		t.Error("an idle connection was kept past 5 s (IdleTimeout 1 s)")
	}
}

func TestHTTPHeaderLimit(t *testing.T) {
	c := servertest.Start(t, echoWeb)
	big := strings.Repeat("a", 100<<10) // over the default 64 KiB
	if got, _ := get(t, "http://"+c.HTTPAddr+"/healthz", "", "X-Padding", big); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB of headers: %d, want 431", got)
	}
	if got, _ := get(t, "http://"+c.HTTPAddr+"/healthz", "", "X-Padding", big[:8<<10]); got != http.StatusOK {
		t.Errorf("8 KiB of headers: %d, want 200", got)
	}
}
