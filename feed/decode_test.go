package feed_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/feed"
)

func TestRoundTrip(t *testing.T) {
	f := example()
	var buf bytes.Buffer
	if err := feed.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	g, err := feed.Decode(&buf)
	if err != nil {
		t.Fatalf("Decode(Encode(example)) = %v", err)
	}
	// Lines without releases come back with an empty list.
	f.Lines[4].Releases = []feed.Release{}
	if !reflect.DeepEqual(f, g) {
		t.Errorf("round trip:\n got %+v\nwant %+v", g, f)
	}
	if *g.Lines[1].Releases[1].CVEs != 0 || g.Lines[1].Releases[2].CVEs != nil {
		t.Errorf("cves: a count of 0 and an absent count must stay apart: %v, %v", g.Lines[1].Releases[1].CVEs, g.Lines[1].Releases[2].CVEs)
	}
	a, err := feed.Canonical(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := feed.Canonical(g)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("canonical encodings differ:\n%s\n%s", a, b)
	}
}

func TestCanonical(t *testing.T) {
	f := example()
	// Times in another zone and a nil list encode as in UTC and [].
	f.GeneratedAt = f.GeneratedAt.In(time.FixedZone("CET", 3600))
	f.Lines[4].Releases = nil
	f.Format = ""
	b, err := feed.Canonical(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"format":"ward-release-feed/1","serial":7,"generated_at":"2026-11-30T12:00:00Z","expires_at":"2027-02-28T12:00:00Z","sources":[{"name":"sofa-macos",`,
		`{"platform":"windows","id":"windows-11-24h2-enterprise","version":"11 24H2","build":26100,"edition":"enterprise","eol":"2027-10-12","latest":"26100.7100","releases":[{"build":26100,"ubr":6900,"released":"2026-09-08","exploited":false,"cves":80},`,
		`"eol":"2027-04-30","esm_eol":"2032-04-30","latest":"22.04.5"`,
		`{"platform":"fedora","id":"fedora-44","os_id":"fedora","version":"44","eol":"2027-05-18","releases":[]}]}`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("canonical encoding lacks %s:\n%s", want, b)
		}
	}
	for _, between := range []string{"\n", `": `, `, "`, `{ `, ` }`} {
		if bytes.Contains(b, []byte(between)) {
			t.Errorf("canonical encoding has whitespace between tokens (%q)", between)
		}
	}
	if f.Format != "" || f.Lines[4].Releases != nil {
		t.Errorf("Canonical changed its argument")
	}
}

func TestDecodeStrict(t *testing.T) {
	good := "{\n  \"format\": \"ward-release-feed/1\",\n  \"serial\": 1\n}\n"
	f, err := feed.Decode(strings.NewReader(good))
	if err != nil || f.Format != feed.Format || f.Serial != 1 {
		t.Fatalf("Decode(good) = %+v, %v", f, err)
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"unknown field", "{\n  \"format\": \"ward-release-feed/1\",\n  \"signature\": 1\n}", `3:3: unknown field "signature"`},
		{"unknown nested field", "{\"format\": \"ward-release-feed/1\",\n\"lines\": [{\"id\": \"macos-15\",\n   \"url\": \"x\"}]}", `3:4: unknown field "url"`},
		{"wrong format", "{\n\"format\": \"ward-release-feed/2\"}", `2:11: format is "ward-release-feed/2", want "ward-release-feed/1"`},
		{"no format", "{}", `1:1: format is "", want "ward-release-feed/1"`},
		{"trailing data", good + "{}", "5:1: data after the document"},
		{"syntax", "{\n\"format\": \"ward-release-feed/1\",,}", "2:33: invalid character ','"},
		{"negative serial", "{\"format\": \"ward-release-feed/1\",\n \"serial\": -1}", "2:14: serial: a JSON number -1 where uint64 belongs"},
		{"bad date", "{\"format\": \"ward-release-feed/1\",\n \"lines\": [{\"eol\": \"2026-02-30\"}]}", `2:35: not a date YYYY-MM-DD: "2026-02-30"`},
		{"date not a string", "{\"format\": \"ward-release-feed/1\",\n \"lines\": [{\"eol\": 20260230}]}", "a date is a JSON string"},
		{"bad time", "{\"format\": \"ward-release-feed/1\",\n \"generated_at\": \"yesterday\"}", `2:30: parsing time "yesterday"`},
		{"truncated", good[:20], "unexpected end of input"},
		{"empty", "", "empty"},
		{"too large", `{"format": "ward-release-feed/1"}` + strings.Repeat(" ", feed.MaxSize), "larger than 8388608 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := feed.Decode(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDate(t *testing.T) {
	d := date("2026-03-01")
	if d != (feed.Date{Year: 2026, Month: time.March, Day: 1}) || d.String() != "2026-03-01" {
		t.Errorf("ParseDate = %+v %q", d, d)
	}
	if !date("2026-02-28").Before(d) || d.Before(d) {
		t.Errorf("Before is wrong")
	}
	if got := feed.DateOf(time.Date(2026, 3, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600))); got != date("2026-02-28") {
		t.Errorf("DateOf in UTC = %v, want 2026-02-28", got)
	}
	if (feed.Date{}).String() != "" || !(feed.Date{}).IsZero() {
		t.Errorf("zero Date is not absent")
	}
}
