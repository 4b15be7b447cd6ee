package notify

import (
	"testing"
	"time"

	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
)

// TestNoticeBody: a notice states the rule's problem (else "Not done yet"
// and its title) and what Ward found, in the reader's language from the
// catalogue (else the English text), and where the steps are; a status
// without an observed text keeps the old body.
func TestNoticeBody(t *testing.T) {
	since := at(2, 10, 0)
	d := since.Add(72 * time.Hour)
	base := Result{RuleID: "r", Status: policies.StatusFail, FailingSince: &since, Deadline: &d}
	withProblem := base
	withProblem.Texts = map[string]Texts{
		"en": {Title: "The platform is known", Problem: "Ward cannot tell your system."},
		"fr": {Title: "Le système est connu", Problem: "Ward ne reconnaît pas votre système"},
	}
	withProblem.Observed = "cannot tell which platform this device runs."
	withProblem.ObservedText = []texts.Text{texts.New("engine.platform_unknown")}
	titleOnly := base
	titleOnly.Texts = map[string]Texts{"en": {Title: "The old rule holds"}, "fr": {Title: "La vieille règle tient"}}
	titleOnly.Observed = "it does not hold."
	older := base
	older.Texts = titleOnly.Texts

	for _, c := range []struct {
		name, lang string
		r          Result
		want       string
	}{
		{"problem, catalogue text, en", "en", withProblem,
			"Ward cannot tell your system. What Ward found: cannot tell which platform this device runs. Open Ward status (ward-agent status) to see what to do."},
		{"problem, catalogue text, fr", "fr", withProblem,
			"Ward ne reconnaît pas votre système. Ce que Ward a constaté : impossible de savoir quel système fait fonctionner cet appareil. Ouvrez l'état Ward (ward-agent status) pour voir quoi faire."},
		{"problem in English, catalogue text in es", "es", withProblem,
			"Ward cannot tell your system. Lo que Ward encontró: no se puede saber qué sistema usa este equipo. Abra el estado de Ward (ward-agent status) para ver qué hacer."},
		{"title only, English observed", "fr", titleOnly,
			"Pas encore fait : La vieille règle tient. Ce que Ward a constaté : it does not hold. Ouvrez l'état Ward (ward-agent status) pour voir les étapes."},
		{"older status, no observed", "en", older,
			"Not done yet: The old rule holds. Open Ward status (ward-agent status) to see the steps."},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Schedule(status(false, c.r), Memory{}, Settings{Lang: c.lang, MaxPerDay: 10}, at(2, 10, 5))
			if len(p.Show) != 1 {
				t.Fatalf("plan %+v", p)
			}
			if got := p.Show[0].Body; got != c.want {
				t.Errorf("body\n%q\nwant\n%q", got, c.want)
			}
		})
	}
	// Discreet: still nothing but the plain summary.
	p := Schedule(status(true, withProblem), Memory{}, Settings{Lang: "fr"}, at(2, 10, 5))
	if len(p.Show) != 1 || p.Show[0].Body != "" || p.Show[0].Summary != "Votre ordinateur demande votre attention" {
		t.Errorf("discreet notice %+v", p.Show)
	}
}
