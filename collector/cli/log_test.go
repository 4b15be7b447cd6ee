package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/cli"
)

// TestServeLogInterval: serve with the evidence log (the default) makes
// the log key under --data/pki at start; --log-interval 0 keeps no log
// and makes none.
func TestServeLogInterval(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantKey bool
	}{
		{nil, true},
		{[]string{"--log-interval", "0"}, false},
	} {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr lockedBuffer
		done := make(chan int, 1)
		go func() {
			done <- cli.Run(ctx, append([]string{"serve", "--data", dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, tc.args...), &stdout, &stderr)
		}()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stdout.String(), "gRPC on "); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("serve %v did not start: %s %s", tc.args, stdout.String(), stderr.String())
			}
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("serve %v exited %d: %s", tc.args, code, stderr.String())
		}
		_, err := os.Stat(filepath.Join(dir, "pki", "log.key"))
		if (err == nil) != tc.wantKey {
			t.Errorf("serve %v: log.key: %v, want it made: %v", tc.args, err, tc.wantKey)
		}
	}
}
