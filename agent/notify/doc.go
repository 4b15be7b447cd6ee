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
// Linux, /var/run/ward on macOS). The socket is mode 0666 so that any
// local user can connect, and the server only writes: each connection
// gets one JSON document and is closed; nothing a client sends is ever
// read. Before it writes, the server asks the kernel who connected
// (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS) and answers only root,
// the service's own user and the desktop users; anyone else's connection
// is closed unanswered and logged (at most once a minute). The Status
// carries no key, token or certificate.
//
// The desktop users are the people logged in at the computer itself
// (DesktopUsers): on Linux the users of the local sessions systemd-logind
// records in /run/systemd/sessions (class user, not remote, not closing;
// SessionUsers), on macOS the owner of /dev/console. Without logind
// nobody is a desktop user and only root can read the status.
//
// Next to the socket the service keeps status.json (the same document,
// for when the service is down) and last-report.json (the last report
// queued for the collector, with every fact, for ward-agent privacy),
// both mode 0600, root's. Each desktop user gets copies of both in
// users/UID (directories root's, mode 0755; the files the user's, mode
// 0600), rewritten each round and, every DefaultResync, created for users
// who logged in and removed for users whose session ended. Clients (Read,
// LastReport) read their own copy, or as root the service's files; a
// user with neither gets ErrNotDesktopUser. A service not running as
// root (a developer's) cannot give files away and keeps no copies.
//
// On Windows the endpoint is the named pipe \\.\pipe\ward-status (go-winio),
// which SYSTEM and Administrators own and other users may only read; the
// file fallback is status.json (and last-report.json) in DefaultDir
// (C:\ProgramData\Ward\Status, which the installer makes readable by
// Users). There the pipe and the directory's access list decide, not the
// server: every interactive or authenticated user can read the status and
// the last report, and there are no per-user copies. The pipe code is
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
// Logs: debug = a desktop user's copy was written or removed; info = a
// notification was shown; warn = the status could not be read or a
// notification could not be shown (helper), a status request was refused
// or the desktop users' copies could not be kept (service).
package notify
