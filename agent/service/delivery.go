package service

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
)

// Delivery is one attempt to deliver the outbox: what the service
// publishes for `ward-agent status --service` (Config.Delivered).
type Delivery struct {
	At time.Time `json:"at"`
	// Delivered counts the reports the collector acknowledged; Waiting
	// those still queued afterwards.
	Delivered int `json:"delivered"`
	Waiting   int `json:"waiting"`
	// Problem says in plain words why delivery stopped, "" when the queue
	// was emptied; Detail is the error itself.
	Problem string `json:"problem,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Explain says in plain words why a delivery to the collector at addr
// failed: the collector refused the device's certificate, could not be
// reached, or was not trusted. Other errors are returned as they are.
func Explain(err error, addr string) string {
	if err == nil {
		return ""
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	msg := ce.Message()
	switch ce.Code() {
	case connect.CodePermissionDenied, connect.CodeUnauthenticated:
		return fmt.Sprintf("the collector refused this device's certificate (%s); enrol it again with ward-agent install --reenroll", msg)
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		switch {
		case strings.Contains(msg, "remote error: tls:"):
			return fmt.Sprintf("the collector at %s refused this device's certificate in the TLS handshake (%s); enrol it again with ward-agent install --reenroll", addr, tlsCause(msg))
		case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
			return fmt.Sprintf("the collector at %s is not the one this device enrolled with: its certificate is not trusted (%s)", addr, tlsCause(msg))
		}
		for _, cause := range []string{"connection refused", "no route to host", "network is unreachable",
			"no such host", "connection reset by peer", "i/o timeout"} {
			if strings.Contains(msg, cause) {
				return fmt.Sprintf("collector unreachable at %s: %s", addr, cause)
			}
		}
		if ce.Code() == connect.CodeDeadlineExceeded {
			return fmt.Sprintf("collector unreachable at %s: no answer in time", addr)
		}
		return fmt.Sprintf("collector unreachable at %s: %s", addr, msg)
	}
	return fmt.Sprintf("the collector at %s answered %s: %s", addr, ce.Code(), msg)
}

// tlsCause is the TLS or X.509 part of a gRPC transport message.
func tlsCause(msg string) string {
	for _, p := range []string{"remote error: ", "x509: ", "tls: "} {
		if i := strings.Index(msg, p); i >= 0 {
			return strings.TrimRight(msg[i:], `"`)
		}
	}
	return msg
}
