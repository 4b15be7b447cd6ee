// Package dashboard is the collector's web dashboard for the security
// manager: sign-in with roles (admin, viewer), the fleet overview with a
// trend from stored history, the device list and device pages, policies
// with upload and what-if, waivers, exports (CSV, JSON, "as of" a date),
// enrolment tokens and the audit log.
//
// Pages are rendered on the server from html/template with embedded
// assets and work without JavaScript. Sessions live in the store (only the
// SHA-256 of the cookie value is kept); cookies are HttpOnly,
// SameSite=Strict and Secure unless Config.InsecureCookies (plain-HTTP
// loopback only). Every POST carries a per-session CSRF token (the sign-in
// form a per-browser one), every admin route checks the role on the
// server, and every admin action is written to the audit log.
//
// Sign-ins are throttled per (user, client address) with a capped backoff
// and per user with a token bucket that an address the user signed in
// from skips (throttle.go); the client address comes from X-Forwarded-For
// only through Config.TrustedProxies. CSV exports neutralise formula cells
// (CSVSafe). The Host allow-list, timeouts and /metrics access are the
// collector's HTTP server's (collector/server/http.go).
package dashboard
