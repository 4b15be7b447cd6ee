package plist

import (
	"errors"
	"testing"
	"time"
)

func TestDecode(t *testing.T) {
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Name</key><string>Data &amp; more</string>
	<key>Size</key><integer>-42</integer>
	<key>Ratio</key><real>0.5</real>
	<key>FileVault</key><true/>
	<key>Locked</key><false/>
	<key>When</key><date>2024-04-17T01:25:11Z</date>
	<key>Blob</key><data>aGVs
	bG8=</data>
	<key>Roles</key><array><string>Data</string></array>
	<key>Empty</key><array/>
	<key>Nested</key><dict/>
</dict>
</plist>`
	v, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := Dict(v)
	if !ok {
		t.Fatalf("top level is %T", v)
	}
	if s, _ := String(m, "Name"); s != "Data & more" {
		t.Errorf("Name = %q", s)
	}
	if m["Size"] != int64(-42) || m["Ratio"] != 0.5 {
		t.Errorf("Size=%v Ratio=%v", m["Size"], m["Ratio"])
	}
	if fv, ok := Bool(m, "FileVault"); !ok || !fv {
		t.Error("FileVault not true")
	}
	if l, ok := Bool(m, "Locked"); !ok || l {
		t.Error("Locked not false")
	}
	if d, _ := Date(m, "When"); !d.Equal(time.Date(2024, 4, 17, 1, 25, 11, 0, time.UTC)) {
		t.Errorf("When = %v", d)
	}
	if string(m["Blob"].([]byte)) != "hello" {
		t.Errorf("Blob = %q", m["Blob"])
	}
	if r, _ := Array(m["Roles"]); len(r) != 1 || r[0] != "Data" {
		t.Errorf("Roles = %v", m["Roles"])
	}
	if e, ok := Array(m["Empty"]); !ok || len(e) != 0 {
		t.Errorf("Empty = %#v", m["Empty"])
	}
}

func TestDecodeRejects(t *testing.T) {
	bad := map[string]string{
		"empty":         "",
		"not xml":       "FileVault is On.",
		"wrong root":    "<dict><key>a</key><true/></dict>",
		"empty plist":   "<plist></plist>",
		"truncated":     "<plist><dict><key>a</key><string>b",
		"key no value":  "<plist><dict><key>a</key></dict></plist>",
		"value no key":  "<plist><dict><string>a</string></dict></plist>",
		"key in array":  "<plist><array><key>a</key></array></plist>",
		"bad integer":   "<plist><integer>x</integer></plist>",
		"bad date":      "<plist><date>yesterday</date></plist>",
		"unknown tag":   "<plist><blob/></plist>",
		"nested scalar": "<plist><string><b>x</b></string></plist>",
		"stray text":    "<plist>hello<true/></plist>",
	}
	for name, doc := range bad {
		if v, err := Decode([]byte(doc)); err == nil {
			t.Errorf("%s: decoded %#v", name, v)
		}
	}
	if _, err := Decode([]byte("bplist00\x00\x01")); !errors.Is(err, ErrBinary) {
		t.Errorf("binary plist: %v", err)
	}
	deep := "<plist>"
	for range maxDepth + 2 {
		deep += "<array>"
	}
	if _, err := Decode([]byte(deep)); err == nil {
		t.Error("deep nesting accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`<plist version="1.0"><dict><key>a</key><array><true/><integer>1</integer></array></dict></plist>`))
	f.Add([]byte(`<plist><date>2024-04-17T01:25:11Z</date></plist>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err == nil && v == nil {
			t.Error("nil value without error")
		}
	})
}
