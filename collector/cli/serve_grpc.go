package cli

import (
	"fmt"
	"math"
	"strconv"

	"github.com/spf13/pflag"
	"golang.org/x/time/rate"

	"github.com/wardhq/ward/collector/server"
)

// grpcFlags adds serve's flags for the gRPC front.
func grpcFlags(f *pflag.FlagSet, o *server.GRPCOptions) {
	f.BoolVar(&o.Reflection, "reflection", false, "serve gRPC reflection (to clients with a device certificate only)")
	f.DurationVar(&o.HandshakeTimeout, "handshake-timeout", 0, "bound of a gRPC connection's TLS handshake (default 10s)")
	f.Var((*rateValue)(&o.EnrollRate), "enroll-rate", "enrolment attempts per second per source address, IPv4 or IPv6 /64 (default 20)")
	f.IntVar(&o.EnrollBurst, "enroll-burst", 0, "burst of enrolment attempts per source address (default 200)")
	f.Var((*rateValue)(&o.EnrollTotalRate), "enroll-total-rate", "enrolment attempts per second in total (default 500)")
	f.IntVar(&o.EnrollTotalBurst, "enroll-total-burst", 0, "burst of enrolment attempts in total (default 1000)")
	f.Var((*rateValue)(&o.EnrollRefusedRate), "enroll-refused-rate", "refused enrolment attempts (wrong token, bad request) per second per source address; ten times as many in total (default 1)")
	f.IntVar(&o.EnrollRefusedBurst, "enroll-refused-burst", 0, "burst of refused enrolment attempts per source address (default 10)")
}

// rateValue is a rate.Limit flag (events per second; 0 takes the default).
type rateValue rate.Limit

func (r *rateValue) String() string { return strconv.FormatFloat(float64(*r), 'g', -1, 64) }
func (r *rateValue) Type() string   { return "per-second" }

func (r *rateValue) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%q is not a rate (a number of events per second, 0 or more)", s)
	}
	*r = rateValue(v)
	return nil
}
