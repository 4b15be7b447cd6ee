package install

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

const runKey = `SOFTWARE\Microsoft\Windows\CurrentVersion\Run`

// RegisterNotifier makes `"PROGRAM" notify` start in every user's session
// at login (a value under HKLM\...\Run).
func RegisterNotifier(program string) error {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, runKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("register notifier: %w", err)
	}
	defer k.Close()
	if err := k.SetStringValue(NotifierLabel, NotifierCommand(program)); err != nil {
		return fmt.Errorf("register notifier: %w", err)
	}
	return nil
}

// UnregisterNotifier removes what RegisterNotifier wrote.
func UnregisterNotifier() error {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, runKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("unregister notifier: %w", err)
	}
	defer k.Close()
	if err := k.DeleteValue(NotifierLabel); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return fmt.Errorf("unregister notifier: %w", err)
	}
	return nil
}
