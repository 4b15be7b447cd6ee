// Package pki is the collector's certificate authority: an ECDSA P-256 CA
// created on first start under the data directory, the server certificate
// for the collector's host names (renewing itself, ServerCerts), device
// certificates signed from agents' certificate signing requests, and the
// rotation of the CA (Rotate), cross-signed so agents keep working.
//
// Files (under DIR/pki): ca.crt, ca.key (0600) the current CA;
// ca-previous.crt the certificates of previous CAs (no keys: Rotate
// destroys them); ca-cross.crt the current CA cross-signed by the
// previous one; server.crt, server.key (0600). docs/enrolment.md, "CA
// lifetime and rotation", describes the procedure.
package pki
