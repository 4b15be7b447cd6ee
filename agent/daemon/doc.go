// Package daemon is the running agent daemon's record in its state
// directory, however the daemon was started (a service manager, an init
// script, a person): daemon.pid names its process for shell scripts (the
// packages' maintainer scripts) and daemon.sock answers each connection
// with an Info document (pid, start time, version, last delivery) for
// `ward-agent status --service` and `uninstall`.
//
// A daemon that no longer answers is found through the pid file (Silent),
// once /proc shows that process is ward-agent daemon for the same state
// directory. The socket, like the state directory, is for root (mode 0600): the
// per-user status is agent/notify's. Only one daemon runs per state
// directory: Open refuses while another answers on the socket.
package daemon
