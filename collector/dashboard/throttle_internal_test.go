package dashboard

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestThrottleStateIsBounded(t *testing.T) {
	th := newThrottle(5, 1000)
	now := time.Now()
	for i := range 50_000 {
		th.admit(now, fmt.Sprintf("user-%d", i), fmt.Sprintf("10.0.%d.%d", i/256%256, i%256))
	}
	if n := th.pairs.len(); n != 1000 {
		t.Errorf("pairs = %d, want the cap 1000", n)
	}
	if n := th.users.len(); n != 1000 {
		t.Errorf("users = %d, want the cap 1000", n)
	}
	// The most recent keys are the ones kept.
	if _, ok := th.pairs.get(pairKey("user-49999", "10.0.195.79")); !ok {
		t.Error("the newest pair was evicted")
	}
	if _, ok := th.pairs.get(pairKey("user-0", "10.0.0.0")); ok {
		t.Error("the oldest pair was kept")
	}
}

func TestThrottleWaitsAreCapped(t *testing.T) {
	th := newThrottle(5, 100)
	now := time.Now()
	longest := time.Duration(0)
	for range 200 {
		w := th.admit(now, "victor", "203.0.113.5")
		longest = max(longest, w)
		if w > pairMaxDelay {
			t.Fatalf("wait %v, over the cap %v", w, pairMaxDelay)
		}
		now = now.Add(w) // an attacker that waits exactly as long as told
	}
	if longest != pairMaxDelay {
		t.Errorf("longest wait %v, want the cap %v", longest, pairMaxDelay)
	}
	// Even after 200 guesses the right password gets in within the cap.
	if w := th.admit(now.Add(pairMaxDelay), "victor", "203.0.113.5"); w != 0 {
		t.Errorf("after the cap: still waiting %v", w)
	}
}

func TestTruncateUTF8(t *testing.T) {
	s := strings.Repeat("é", 40) // 80 bytes
	got := truncateUTF8(s, MaxUserName)
	if len(got) != 64 || got != strings.Repeat("é", 32) {
		t.Errorf("truncateUTF8 = %q (%d bytes)", got, len(got))
	}
	if got := truncateUTF8("a"+strings.Repeat("é", 40), MaxUserName); len(got) != 63 {
		t.Errorf("cut a character in half: %d bytes", len(got))
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.1:5000", nil, "192.0.2.1"},
		{"192.0.2.1:5000", []string{"198.51.100.7"}, "192.0.2.1"}, // peer not trusted: header ignored
		{"10.0.0.2:5000", nil, "10.0.0.2"},
		{"10.0.0.2:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.2:5000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},  // left entries are the client's word
		{"10.0.0.2:5000", []string{"198.51.100.7, 10.9.9.9"}, "198.51.100.7"}, // past a second trusted proxy
		{"10.0.0.2:5000", []string{"198.51.100.7", "10.9.9.9"}, "198.51.100.7"},
		{"10.0.0.2:5000", []string{"10.1.1.1, 10.9.9.9"}, "10.1.1.1"}, // all trusted: the leftmost
		{"10.0.0.2:5000", []string{"198.51.100.7, garbage"}, "10.0.0.2"},
		{"10.0.0.2:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"10.0.0.2:5000", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"[::1]:5000", []string{"2001:db8::5"}, "2001:db8::5"},
		{"[::ffff:10.0.0.2]:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.2:5000", []string{strings.Repeat("x", 1000)}, "10.0.0.2"},
	} {
		r := httptest.NewRequest("POST", "/login", nil)
		r.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddr(r, trusted); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}
