package source

import (
	"context"
	"os"
	"strconv"
	"strings"
)

// linkType reads an interface's ARPHRD type from sysfs (under Root); 0 when
// it cannot be read.
func (l *Live) linkType(_ context.Context, name string) uint16 {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return 0
	}
	b, err := os.ReadFile(l.path("/sys/class/net/" + name + "/type"))
	if err != nil {
		return 0
	}
	t, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 16)
	if err != nil {
		return 0
	}
	return uint16(t)
}
