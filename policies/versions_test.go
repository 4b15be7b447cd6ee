package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// shippedDigests pins each shipped policy's content to its version: a
// collector refuses a document that changed under the same version
// ("raise the version"), and a fleet's reports name a policy by name and
// version. Changing a shipped policy means raising its version and
// putting the new digest here (the test prints it).
var shippedDigests = map[string]struct {
	version int
	sha256  string
}{
	"baseline":  {3, "48bf7158ec450c8ddf7beb4de6a97f434334f59245cc3316ed3b3d32da2ff267"},
	"high-risk": {5, "bdb103f5301ab8c22da5be4e53a92789586c030e8d07d3795c57c1e4cb5d90f2"},
}

func TestShippedVersionsPinContent(t *testing.T) {
	for name, want := range shippedDigests {
		doc, err := shipped.ReadFile(name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		p, err := Embedded(name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(doc)
		got := hex.EncodeToString(sum[:])
		if p.Version != want.version || got != want.sha256 {
			t.Errorf("%s: version %d with content %s; pinned: version %d with %s. A changed policy needs a new version (and this pin updated)",
				name, p.Version, got, want.version, want.sha256)
		}
	}
}
