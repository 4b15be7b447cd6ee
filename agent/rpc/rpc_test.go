package rpc_test

import (
	"testing"

	"google.golang.org/grpc"

	"github.com/wardhq/ward/agent/rpc"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// The agent names each method itself, so that it links no grpc-go; the
// names must be those the collector's grpc-go server routes, which are
// those deployed agents call.
func TestMethodNamesAreTheServers(t *testing.T) {
	for _, m := range []struct{ ours, grpc, wire string }{
		{rpc.MethodEnroll, wardv1grpc.EnrollmentService_Enroll_FullMethodName, "/ward.v1.EnrollmentService/Enroll"},
		{rpc.MethodReport, wardv1grpc.AgentService_Report_FullMethodName, "/ward.v1.AgentService/Report"},
		{rpc.MethodGetPolicy, wardv1grpc.AgentService_GetPolicy_FullMethodName, "/ward.v1.AgentService/GetPolicy"},
		{rpc.MethodRenew, wardv1grpc.AgentService_Renew_FullMethodName, "/ward.v1.AgentService/Renew"},
	} {
		if m.ours != m.grpc || m.ours != m.wire {
			t.Errorf("method %q: grpc-go stubs say %q, deployed agents call %q", m.ours, m.grpc, m.wire)
		}
	}
	// Every method the collector serves is one the agent names.
	ours := map[string]bool{rpc.MethodEnroll: true, rpc.MethodReport: true, rpc.MethodGetPolicy: true, rpc.MethodRenew: true}
	for _, d := range []grpc.ServiceDesc{wardv1grpc.EnrollmentService_ServiceDesc, wardv1grpc.AgentService_ServiceDesc} {
		for _, m := range d.Methods {
			if name := "/" + d.ServiceName + "/" + m.MethodName; !ours[name] {
				t.Errorf("the collector serves %s, which the agent does not name", name)
			}
		}
	}
}
