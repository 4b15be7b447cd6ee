package install

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// stateSDDL grants full control to SYSTEM and Administrators only, inherited
// by everything below, and blocks inheritance from ProgramData (where Users
// may read).
const stateSDDL = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// Protect creates dir if needed and replaces its DACL so that only SYSTEM
// (the service account) and Administrators can open it or anything in it.
func Protect(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("protect %s: %w", dir, err)
	}
	sd, err := windows.SecurityDescriptorFromString(stateSDDL)
	if err != nil {
		return fmt.Errorf("protect %s: %w", dir, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("protect %s: %w", dir, err)
	}
	err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("protect %s: %w", dir, err)
	}
	return nil
}
