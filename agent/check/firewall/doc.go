// Package firewall collects the host firewall's live state: whether inbound
// traffic is actually filtered, per profile where the OS has profiles. An
// empty ruleset or an accept-all input policy is off.
package firewall
