// Package check defines what every Ward collector reads the operating system
// through (Source) and the small helpers collectors share.
//
// Collectors are pure functions of a Source: they never touch the OS
// themselves. The live Source for each OS lives in agent/source, the only
// package that runs programs; a recorded Source replays a support bundle, so
// every collector and parser runs on Linux CI for every platform.
//
// A collector never turns an error into a good state. When it cannot decide,
// it leaves the fact unset and says why in the family's Collection.
package check
