// Package events tells other systems what happens in the fleet: signed
// webhooks and a JSON-lines stream (a file or syslog) for a SIEM
// (docs/integrations.md).
//
// Events are kept in the store's outbox (store.EventLog) before anything
// is sent, so none is lost to a restart or to a receiver that is down:
// the CLI and the dashboard add revocations, the server adds enrolments
// (Recorder), and the Dispatcher turns the store's verdict transitions
// and the deadlines that pass into events, then hands every event to
// each sink in order. Each sink keeps a cursor in the store and moves it
// once an event is handled (delivered, or given up after its retries and
// written to the delivery log): delivery is at least once, and an
// event's id lets a receiver drop a repeat.
package events
