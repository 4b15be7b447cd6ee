//go:build !linux

package source

import "context"

// linkType is 0 (unknown): only Linux has ARPHRD types.
func (l *Live) linkType(context.Context, string) uint16 { return 0 }
