//go:build !linux && !darwin && !windows

package source

import (
	"context"
	"fmt"

	"github.com/wardhq/ward/agent/check"
)

func (l *Live) listening(context.Context) ([]check.Socket, error) {
	return nil, fmt.Errorf("sockets: %w", check.ErrUnsupported)
}
