package enroll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// machineIDSalt prefixes the OS machine id before hashing, so the value
// the collector sees cannot be matched with the raw id elsewhere.
const machineIDSalt = "ward"

// MachineID is the hashed OS machine identifier: the hex SHA-256 of "ward"
// followed by /etc/machine-id (Linux) or MachineGuid (Windows). It is
// empty when the OS offers none (macOS for now); the raw id is never sent.
func MachineID(ctx context.Context, src check.Source, platform string) string {
	var raw string
	switch platform {
	case "linux":
		for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
			if b, err := src.ReadFile(ctx, p, 256); err == nil {
				if raw = strings.TrimSpace(string(b)); raw != "" {
					break
				}
			}
		}
	case "windows":
		v, err := src.Registry(ctx, `SOFTWARE\Microsoft\Cryptography`, "MachineGuid")
		if err == nil && v.String != nil {
			raw = strings.ToLower(strings.TrimSpace(*v.String))
		}
	}
	if raw == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(machineIDSalt + raw))
	return hex.EncodeToString(sum[:])
}
