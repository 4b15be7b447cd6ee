// Package patch collects patch-level facts: pending (security) updates, the
// last update install, the package index's age, reboot required and
// automatic updates.
package patch
