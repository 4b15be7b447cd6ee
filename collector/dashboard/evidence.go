package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wardhq/ward/collector/evidence"
)

// Evidence export (docs/evidence.md): a GET download like the other
// exports, for viewers too, each one written to the audit log.

// deviceEvidence is GET /devices/{id}/evidence?from=&to=: the device's
// evidence file. A bad period or an unknown device is the error page
// with the reason (400, 404).
func (h *handler) deviceEvidence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.evidenceExport(w, r, id, func(status int, msg string) {
		w.WriteHeader(status)
		h.render(w, r, "error", page{Title: "Evidence export", Error: msg})
	})
}

// fleetEvidence is GET /export/evidence?from=&to=: every device with a
// report collected in the period. A bad period is the export page with
// the reason (400).
func (h *handler) fleetEvidence(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h.evidenceExport(w, r, "", func(status int, msg string) {
		w.WriteHeader(status)
		h.render(w, r, "export", page{Title: "Export", Nav: "export", Error: msg, Form: map[string]string{"ev_from": q.Get("from"), "ev_to": q.Get("to")}})
	})
}

func (h *handler) evidenceExport(w http.ResponseWriter, r *http.Request, deviceID string, refuse func(status int, msg string)) {
	ctx := r.Context()
	q := r.URL.Query()
	now := h.now()
	from, to, err := evidence.ParsePeriod(q.Get("from"), q.Get("to"), now)
	if err != nil {
		refuse(http.StatusBadRequest, "Evidence export: "+err.Error())
		return
	}
	es, err := evidence.For(h.st)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	var ca [][]byte
	if h.cfg.EvidenceCA != nil {
		ca = h.cfg.EvidenceCA()
	}
	if len(ca) == 0 {
		refuse(http.StatusServiceUnavailable, "Evidence export: this dashboard was not given the collector CA; use ward-collector evidence export.")
		return
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(ExportWriteTimeout)) // unsupported only in tests (httptest)
	var log *evidence.Log
	if h.cfg.EvidenceLog != nil {
		log = h.cfg.EvidenceLog()
	}
	res, err := evidence.Build(ctx, es, evidence.Options{
		DeviceID: deviceID, From: from, To: to, Now: now,
		GeneratedBy: "ward-collector " + h.cfg.Collector.Version + " on " + h.cfg.Collector.Host,
		CA:          ca, Log: log,
	})
	if errors.Is(err, evidence.ErrUnknownDevice) {
		refuse(http.StatusNotFound, "Evidence export: device "+deviceID+" not found.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	target := deviceID
	if target == "" {
		target = "fleet"
	}
	h.audit(ctx, session(r).User, "evidence.export", target, res.Describe())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, evidence.NameFor(deviceID, from, to)))
	if err := evidence.Write(w, res.File); err != nil {
		h.log.Error("evidence export", "device_id", deviceID, "err", err)
	}
}
