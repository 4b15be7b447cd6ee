package install

import "io/fs"

// checksTrust is false on Windows: Trusted checks nothing there. Who may
// write a directory is its access list, not an owner and mode bits, and
// the default one of C:\ lets every user create folders; a check that
// refuses what it should without refusing Program Files (owned by
// TrustedInstaller) needs a Windows machine to be tested on, which this
// project does not have yet. The MSI installs into Program Files and
// ProgramData, whose access lists admit only administrators to write, and
// Protect gives the state directory a protected list of its own.
const checksTrust = false

func owner(fs.FileInfo) (int, bool) { return 0, false }
