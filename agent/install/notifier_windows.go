package install

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

const runKey = `SOFTWARE\Microsoft\Windows\CurrentVersion\Run`

// RegisterNotifier makes `"PROGRAM" notify` start in every user's session
// at login (a value under HKLM\...\Run).
func (l Layout) RegisterNotifier() error {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, runKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("register notifier: %w", err)
	}
	defer k.Close()
	if err := k.SetStringValue(NotifierLabel, NotifierCommand(l.Program)); err != nil {
		return fmt.Errorf("register notifier: %w", err)
	}
	return nil
}

// UnregisterNotifier removes what RegisterNotifier wrote and reports
// whether there was anything to remove.
func (Layout) UnregisterNotifier() (bool, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, runKey, registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("unregister notifier: %w", err)
	}
	defer k.Close()
	err = k.DeleteValue(NotifierLabel)
	switch {
	case errors.Is(err, registry.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("unregister notifier: %w", err)
	}
	return true, nil
}
