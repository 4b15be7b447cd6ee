package i18n

import (
	"slices"
	"testing"

	"github.com/wardhq/ward/policies/texts"
)

// TestTextsLanguages: the catalogue of observed texts ships the agent's
// languages, so no staff member reads their prompt half in English.
func TestTextsLanguages(t *testing.T) {
	if !slices.Equal(texts.Languages, Languages) {
		t.Errorf("policies/texts.Languages = %v, agent/i18n.Languages = %v", texts.Languages, Languages)
	}
}
