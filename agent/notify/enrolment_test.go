package notify

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestPublishNamesEnrolment: the published status (socket and file) names
// the device and epoch recorded in the state directory.
func TestPublishNamesEnrolment(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(state, enroll.DeviceFile), []byte(`{"device_id":"dev_new","collector":"c:443","epoch":7}`), 0o644)
	srv, err := NewServer(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.StateDir = state
	pol := &policies.Policy{Name: "baseline", Version: 1}
	srv.Publish(pol, nil, &wardv1.Report{CollectedAt: timestamppb.New(time.Now())}, nil, nil)
	st, origin, err := Read(context.Background(), dir)
	if err != nil || origin != FromFile {
		t.Fatalf("Read = %v, %v", origin, err)
	}
	if st.DeviceID != "dev_new" || st.Epoch != 7 {
		t.Errorf("status names device %q epoch %d, want dev_new epoch 7", st.DeviceID, st.Epoch)
	}
	e, err := ReadEnrolment(state)
	if err != nil || !st.BelongsTo(e) {
		t.Errorf("ReadEnrolment = %+v, %v; BelongsTo = %v, want true", e, err, st.BelongsTo(e))
	}
}

func TestBelongsTo(t *testing.T) {
	this := Enrolment{DeviceID: "dev_a", Epoch: 3}
	for _, tc := range []struct {
		name string
		st   Status
		want bool
	}{
		{"same device and epoch", Status{DeviceID: "dev_a", Epoch: 3}, true},
		{"another device", Status{DeviceID: "dev_b", Epoch: 3}, false},
		{"an earlier epoch of this device (reinstalled)", Status{DeviceID: "dev_a", Epoch: 2}, false},
		{"no device named (an older agent's file)", Status{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.BelongsTo(this); got != tc.want {
				t.Errorf("BelongsTo = %v, want %v", got, tc.want)
			}
		})
	}
}
