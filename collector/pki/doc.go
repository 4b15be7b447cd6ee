// Package pki is the collector's certificate authority: an ECDSA P-256 CA
// created on first start under the data directory, the server certificate
// for the collector's host names, and device certificates signed from
// agents' certificate signing requests.
//
// Files (under DIR/pki): ca.crt, ca.key (0600), server.crt, server.key (0600).
package pki
