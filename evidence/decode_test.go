package evidence

import (
	"bytes"
	"strings"
	"testing"
)

func TestDecodeStrict(t *testing.T) {
	good := "{\n  \"format\": \"ward-evidence/1\",\n  \"devices\": []\n}\n"
	f, err := Decode(strings.NewReader(good))
	if err != nil || f.Format != Format {
		t.Fatalf("Decode(good) = %+v, %v", f, err)
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"unknown field", "{\n  \"format\": \"ward-evidence/1\",\n  \"extra\": 1\n}", `3:3: unknown field "extra"`},
		{"unknown nested field", "{\"format\": \"ward-evidence/1\",\n\"devices\": [{\"device_id\": \"a\",\n   \"secret\": true}]}", `3:4: unknown field "secret"`},
		{"wrong format", "{\n\"format\": \"ward-evidence/2\"}", `2:11: format is "ward-evidence/2", want "ward-evidence/1"`},
		{"no format", "{}", `1:1: format is "", want "ward-evidence/1"`},
		{"trailing data", good + "{}", "5:1: data after the document"},
		{"syntax", "{\n\"format\": \"ward-evidence/1\",,}", "2:29: invalid character ','"},
		{"time type", "{\"format\": \"ward-evidence/1\",\n \"from\": 12}", "2:13: Time.UnmarshalJSON: input is not a JSON string"},
		{"number type", "{\"format\": \"ward-evidence/1\",\n \"devices\": [{\"gaps\": [{\"epoch\": \"2\"}]}]}", "2:37: devices.gaps.epoch: a JSON string where uint64 belongs"},
		{"bad base64", "{\"format\": \"ward-evidence/1\", \"ca\": [\"!!\"]}", "illegal base64"},
		{"truncated", good[:20], "unexpected end of input"},
		{"empty", "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v, want %q", err, tc.want)
			}
		})
	}
	_, err = decode(strings.NewReader(good), 10)
	if err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Errorf("oversized: %v", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	f := &File{Devices: []Device{{DeviceID: "d", Reports: []Report{{Statement: []byte{1, 2}, Signature: []byte{3}}}}}}
	var buf bytes.Buffer
	if err := Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	g, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if g.Format != Format || !bytes.Equal(g.Devices[0].Reports[0].Statement, []byte{1, 2}) {
		t.Errorf("round trip: %+v", g)
	}
}
