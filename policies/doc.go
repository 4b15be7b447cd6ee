// Package policies loads, validates and evaluates Ward's policy documents:
// YAML files whose rules are CEL expressions over a device's facts
// (proto/ward/v1 Facts). The same package runs on the agent (offline
// prompts) and on the collector (re-evaluation, what-if).
//
// # Loading
//
// Parse, Load and Embedded return a *Policy whose every expression is
// compiled, or a *ValidationError listing every problem as
// "FILE:LINE: reason" (unknown keys, bad CEL, bad severity or grace, a
// missing English text, a translation missing a platform, duplicate rule
// ids). Documents are walked as a YAML syntax tree (github.com/goccy/go-yaml)
// so each problem has a line; a CEL error's line is the expression's YAML
// line plus CEL's own line within it. Anchors, aliases and tags are refused.
// The shipped policies are embedded: Names lists them.
//
// # Parameters
//
// A document may declare params: names mapped to a text, a whole number,
// a boolean, or a list of texts or of whole numbers. Rules read them as
// params.NAME: each is a CEL variable named "params.NAME" typed by its
// value, so the checker rejects a rule that reads one as another type. A
// walk of each parsed expression rejects a read of an undeclared
// parameter, params read whole, and a declared parameter no rule reads;
// a list given to service_allowed is checked entry by entry at its own
// YAML line. Policy.Params holds the values; they are part of the policy.
//
// # Variables
//
// A rule reads os, disk, patch and firewall (the four families of
// wardv1.Facts) and now (a timestamp). Each family is a map built with
// protoreflect, keyed by the proto field names (snake_case):
//
//   - a field with presence (proto3 optional, messages, timestamps) that
//     is unset is absent from the map, and so is an enum at its
//     *_UNSPECIFIED zero value: both mean "the collector could not tell";
//   - other scalars are present with their value (int32 becomes int);
//   - enums are lowercase names without their type prefix: "on",
//     "suspended", "fully_encrypted", "block", "ok", "partial";
//   - timestamps are CEL timestamps; repeated fields are lists;
//   - a family that was not collected is an empty map.
//
// Reading an absent key is a CEL "no such key" error, and an error makes
// the rule UNKNOWN with a reason naming the fact: an unknown fact can never
// make a rule pass.
//
// # Three-valued logic
//
// CEL's && and || are commutative with errors: false && error is false,
// true || error is true, and otherwise the error wins. With absent facts as
// errors this is Kleene's three-valued logic, which is exactly what a
// compliance rule needs: "encrypted && protection == 'on'" is FAIL when
// the volume is known to be unencrypted even if its protection is unknown,
// and UNKNOWN (never PASS) when encryption is unknown and protection is on.
// all() and exists() behave the same way over lists. Rules should therefore
// be written as conjunctions of the facts they need and let missing facts
// propagate; has() is available but a rule that uses it to skip a missing
// fact must not turn that into a pass.
//
// Functions added to CEL:
//
//   - version_at_least(version, min string) bool compares dotted numbers
//     ("10.0.22631" >= "10.0.19045", "14.6.1" >= "14"); anything else is an
//     error, so an unparsable version is UNKNOWN;
//   - days(duration) int counts whole days;
//   - unknown(reason) bool is always an error with that reason (a text, a
//     message or a list of messages), for "this cannot be decided"
//     branches (an unlisted distribution, a stale package index):
//     cond || unknown(msg("...")) is true or UNKNOWN;
//   - msg(id) and msg(id, {"name": value}) give a message of the shared
//     catalogue (package policies/texts); the id must be a literal the
//     catalogue holds and literal parameters must be the message's, or the
//     document is refused at load; values are texts, numbers or
//     timestamps (written as a date);
//   - describe_volumes(list) describes volumes as a list of messages;
//   - service_allowed(service, list) bool reports whether an entry of the
//     list ("tcp/22", "udp/5353", "tcp/8000-8100") covers a reachable
//     service's protocol and port; a service without protocol or port, or
//     an entry that is not a service, is an error;
//   - describe_services(list) describes reachable services as a list of
//     messages ("tcp 0.0.0.0:22 reachable from anywhere");
//   - reason(collection) is why a collection or a volume is not fully
//     known, as messages: its reason_text, else its English reason as a
//     technical detail (engine.detail).
//
// An observed expression gives a text (a custom policy's own words, shown
// as written), a message or a list of messages (lists concatenate with +).
//
// Expressions run with a cost limit; strings extensions (join, format, ...)
// are available.
//
// # Evaluation
//
// Evaluate leaves out rules whose platforms do not include the device's
// platform or whose when guard is false; a when guard that errors gives
// UNKNOWN, and an unknown platform makes every rule UNKNOWN. Before a rule
// runs, its family's collection status decides: FAILED, UNSUPPORTED,
// UNSPECIFIED or a missing family give UNKNOWN with the collection's reason;
// PARTIAL evaluates, and an error then gives UNKNOWN with the collection's
// reason and the CEL error; OK evaluates. Only exactly true is PASS; false
// is FAIL; anything else is UNKNOWN.
//
// A FAIL carries FailingSince (Options.FailingSince for the rule, else
// Options.Now), Deadline (FailingSince plus the rule's grace) and Overdue
// (now after the deadline). Observed text comes from the rule's observed
// expression, else from a per-family description of the facts, as
// catalogue messages (Result.ObservedText); why a rule is UNKNOWN is
// messages too (Result.ReasonText): the collection's own reason_text when
// it has one, else its English reason as a technical detail, else the
// engine's words. Result.Observed and Result.Reason are their English
// rendering. Title, Expected and Remediation are in Options.Lang, falling
// back to English.
package policies
