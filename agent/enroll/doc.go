// Package enroll enrols this device with a collector and keeps its
// identity in the agent's state directory.
//
// Enrol generates an ECDSA P-256 key that never leaves the device, sends a
// certificate request with an enrolment token, and stores the certificate
// the collector issues. The collector's CA is pinned on first contact: the
// TLS handshake is accepted only when the chain the collector presents
// holds a CA whose SHA-256 fingerprint is the one given, and the leaf
// verifies against it. From then on the stored ca.crt is the only root the
// agent trusts.
//
// State directory layout (see Paths):
//
//	device.key   PKCS #8 private key, PEM, mode 0600
//	device.crt   device certificate, PEM
//	ca.crt       pinned collector CA, PEM
//	device.json  {device_id, collector, group, enrolled_at}; written last,
//	             so a directory without it is not enrolled
package enroll
