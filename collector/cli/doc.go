// Package cli is ward-collector's command line: serve, and the admin
// commands (token, devices, device, fleet, policy) that open the data
// directory's SQLite database directly. WAL mode lets them run beside a
// serving collector. Every listing takes --json.
package cli
