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
	"baseline":  {2, "2af47c6483f0dec87d3db5fb567f70ab6bf27692d9e638dbc9d3d5db759b8ea3"},
	"high-risk": {4, "f9f46620a4fb6d29729cc1910d163b35030aae9ba03b85ccbc0127948abd0823"},
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
