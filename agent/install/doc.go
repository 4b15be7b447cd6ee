// Package install is the agent's place on each operating system: where its
// program, configuration and state live (Layout), who may read the state
// (Protect), whether only root could change a place the service runs from
// or keeps its state in (Trusted), whether this machine has a service
// manager that can run it (ServiceManager: systemd installed in a
// container is not one) and where
// that keeps its registration (ServiceFile), how the service manager runs
// it (ServiceConfig), where its log lines go when it runs as a service
// (NewServiceHandler), and how the per-user notifier is registered to
// start at login (Layout.RegisterNotifier).
//
// The layout is the one the packages in installer/ use, so that
// `ward-agent install` on a bare binary and a deb, rpm, MSI or pkg give the
// same machine:
//
//	Linux    /usr/bin/ward-agent, /etc/ward, /var/lib/ward
//	Windows  C:\Program Files\Ward\ward-agent.exe, C:\ProgramData\Ward
//	macOS    /usr/local/bin/ward-agent, /Library/Application Support/Ward
//
// State (identity, key, outbox, policy cache) is readable only by the
// service account: mode 0700 on Unix, a protected DACL granting SYSTEM and
// Administrators on Windows.
package install
