// Package notify tells the person at the keyboard what to fix: the local
// status endpoint the agent service publishes its latest results on, the
// client that reads it, the pure prompt schedule, and the per-user helper
// that shows native desktop notifications.
//
// # Status endpoint
//
// The service publishes a Status (results with their texts in every
// language the policy has, first-failure times, deadlines, the policy's
// name, version and discreet flag) on a Unix socket, status.sock, in a
// directory that only the service can write (DefaultDir: /run/ward on
// Linux, /var/run/ward on macOS). The socket is mode 0666 so any local user
// can connect, and the server only writes: each connection gets one JSON
// document and is closed; nothing a client sends is ever read. The Status
// carries no key, token or certificate.
//
// Next to the socket the service keeps status.json (the same document, for
// when the service is down) and last-report.json (the last report queued
// for the collector, for ward-agent privacy), both mode 0644.
//
// On Windows the endpoint is the named pipe \\.\pipe\ward-status (go-winio),
// which SYSTEM and Administrators own and other users may only read; the
// file fallback is status.json in DefaultDir (C:\ProgramData\Ward\Status,
// which the installer makes readable by Users). The pipe code is
// cross-compiled here but has not run on Windows.
//
// # Schedule
//
// Schedule is a pure function of the problems (failing rules with their
// first-failure times and deadlines), what the helper remembers (when each
// prompt was last shown, how many were shown today, the snooze), the
// user's settings (quiet hours, per-day cap, language) and now. It returns
// the notifications to show now and when to wake up next. See
// docs/prompts.md for the reminder spacing.
//
// Logs: info = a notification was shown; warn = the status could not be
// read or a notification could not be shown.
package notify
