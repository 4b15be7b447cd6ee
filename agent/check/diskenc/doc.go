// Package diskenc collects disk-encryption facts: BitLocker per volume on
// Windows, FileVault on macOS (not mere hardware encryption), LUKS1/LUKS2
// through any dm stack on Linux, and swap.
package diskenc
