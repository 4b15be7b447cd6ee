// Package cli implements ward-agent's commands (cobra): check, bundle and
// version. It only wires collectors, the policy engine and output; the
// checks themselves live in agent/check.
//
// Exit codes of `ward-agent check`: 0 every applicable rule passed, 1 at
// least one rule failed, 2 nothing failed but some rules are unknown, 3 a
// usage or input error (bad flag, unreadable policy or bundle), 4 an
// internal error.
package cli
