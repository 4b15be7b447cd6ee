package cli

import (
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/wardhq/ward/collector/server"
)

func TestGRPCFlags(t *testing.T) {
	var o server.GRPCOptions
	f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	grpcFlags(f, &o)
	if err := f.Parse([]string{"--reflection", "--handshake-timeout", "3s", "--enroll-rate", "0.5", "--enroll-burst", "4", "--enroll-total-rate", "7", "--enroll-total-burst", "9"}); err != nil {
		t.Fatal(err)
	}
	want := server.GRPCOptions{Reflection: true, HandshakeTimeout: 3 * time.Second, EnrollRate: 0.5, EnrollBurst: 4, EnrollTotalRate: 7, EnrollTotalBurst: 9}
	if o != want {
		t.Errorf("parsed %+v, want %+v", o, want)
	}
	for _, bad := range []string{"-1", "fast", "NaN", "+Inf"} {
		f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		grpcFlags(f, &server.GRPCOptions{})
		if err := f.Parse([]string{"--enroll-rate", bad}); err == nil {
			t.Errorf("--enroll-rate %s accepted", bad)
		}
	}
	var def server.GRPCOptions
	f = pflag.NewFlagSet("serve", pflag.ContinueOnError)
	grpcFlags(f, &def)
	if err := f.Parse(nil); err != nil || def.Reflection {
		t.Errorf("reflection on by default (%v)", err)
	}
}
