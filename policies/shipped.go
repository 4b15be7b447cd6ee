package policies

import (
	"fmt"
	"slices"
	"strings"
)

// EmbeddedDocument returns the document (YAML) of a policy shipped with
// Ward by name, exactly as Embedded parses it: what a collector serving
// the shipped default keeps as evidence of the policy in force.
func EmbeddedDocument(name string) ([]byte, error) {
	if !slices.Contains(shippedNames, name) {
		return nil, fmt.Errorf("no shipped policy named %q (have %s)", name, strings.Join(shippedNames, ", "))
	}
	data, err := shipped.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("read shipped policy: %w", err)
	}
	return data, nil
}
