// Package store defines what the collector keeps and the Store interface
// every storage backend implements: enrolment tokens, devices, reports,
// the latest verdict per device and rule, the history of transitions, and
// the policy of each group.
//
// Backends live in sub-packages (sqlite; postgres later) and prove they
// behave alike by passing storetest.RunConformance.
package store
