// Package checktest holds test helpers shared by Ward's collectors: golden
// files of expected facts, rewritten with `go test ./... -update`.
package checktest

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Update is set by `go test -update`: golden files are rewritten from what
// the code produces instead of compared.
var Update = flag.Bool("update", false, "rewrite golden files")

// Canonical renders msg as indented JSON with sorted keys, stable across
// protobuf versions (protojson's own spacing is deliberately unstable).
func Canonical(t testing.TB, msg proto.Message) []byte {
	t.Helper()
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		t.Fatalf("marshal %T: %v", msg, err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("re-decode %T: %v", msg, err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("indent %T: %v", msg, err)
	}
	return append(out, '\n')
}

// Golden compares msg with the golden file at path, or rewrites the file
// under -update.
func Golden(t testing.TB, path string, msg proto.Message) {
	t.Helper()
	GoldenBytes(t, path, Canonical(t, msg))
}

// GoldenBytes compares got with the golden file at path, or rewrites the
// file under -update.
func GoldenBytes(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden %s (run with -update to create it): %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the code produces (run with -update if the change is intended)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// Texts writes catalogue messages (a reason_text) compactly for a test to
// compare: per message its id, then its parameters as name=value sorted by
// name, all separated by spaces.
func Texts(ts []*wardv1.Text) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		s := t.GetId()
		for _, k := range slices.Sorted(maps.Keys(t.GetParams())) {
			s += " " + k + "=" + t.GetParams()[k]
		}
		out = append(out, s)
	}
	return out
}
