// Package source provides Ward's check.Source implementations: the live
// Source of each operating system (the only code in Ward that runs
// programs), the Recorded Source that replays a support bundle, and the
// Recorder that captures every read into one.
//
// Live sources run only allow-listed tools by absolute path, with argv, a
// context timeout and capped output. On a platform without an interface
// (the registry on Linux) they return check.ErrUnsupported.
//
// Some reads are OS interfaces rather than tools: the nftables ruleset is
// dumped over netlink and decoded here into the kernel's register form;
// interfaces come from package net (and sysfs for the Linux link type);
// listening sockets from /proc/net on Linux, iphlpapi on Windows and
// netstat on macOS. Their parsers (parseProcNet, parseMIBTable,
// parseNetstat) are pure and untagged, so Linux CI tests all of them.
package source
