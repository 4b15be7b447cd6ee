//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"syscall"
)

// giveToOwnerOf gives every file under stage to the owner of dir (the data
// directory a restore replaces) when this process runs as root and dir
// belongs to someone else: a restore run as root into the package's
// /var/lib/ward-collector must leave files its service user can open. A
// missing dir, or a restore run as that user, changes nothing.
func giveToOwnerOf(stage, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return nil
	}
	uid, gid := int(sys.Uid), int(sys.Gid)
	return filepath.WalkDir(stage, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// giveBackJournals gives the -wal and -shm of the database at db to the
// database's owner when this process runs as root and created them (a
// backup of a stopped collector's data directory, or one whose collector
// started meanwhile): the collector's user could not open them otherwise.
func giveBackJournals(db string) {
	if os.Geteuid() != 0 {
		return
	}
	st, err := os.Stat(db)
	if err != nil {
		return
	}
	owner, ok := st.Sys().(*syscall.Stat_t)
	if !ok || owner.Uid == 0 {
		return
	}
	for _, p := range []string{db + "-wal", db + "-shm"} {
		if st, err := os.Lstat(p); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid == 0 && st.Mode().IsRegular() {
				os.Lchown(p, int(owner.Uid), int(owner.Gid))
			}
		}
	}
}
