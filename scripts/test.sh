#!/usr/bin/env bash
# Ward's test command: installs what the tests need (when run as root on
# Debian), checks formatting, generated code, vet, staticcheck and buf lint,
# cross-builds the agent for every platform, and runs every test.
#
#   scripts/test.sh               # as root: everything (netns, nftables, cryptsetup)
#   scripts/test.sh -short        # extra args go to `go test`
set -euo pipefail
cd "$(dirname "$0")/.."

GOBIN="$(go env GOPATH)/bin"
export PATH="$PATH:$GOBIN"

step() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	need=()
	for pair in nft:nftables cryptsetup:cryptsetup-bin iptables-save:iptables iptables-nft-restore:iptables ipset:ipset ufw:ufw ip:iproute2 chromium:chromium wixl:wixl msiinfo:msitools rpm:rpm dbus-daemon:dbus notify-send:libnotify-bin pg_ctlcluster:postgresql systemd-analyze:systemd runuser:util-linux fribidi:libfribidi-bin; do
		command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
	done
	# The notification test's server (agent/notify/testdata/notifyd.py).
	/usr/bin/python3 -c 'import dbus, gi' 2>/dev/null || need+=(python3-dbus python3-gi)
	if [ ${#need[@]} -gt 0 ]; then
		step "apt-get install ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	fi
fi

# The PostgreSQL store's tests (collector/store/postgres/pgtest) need a
# server: Debian's cluster, started here (there is no systemd), with a
# superuser role for this user over the socket. Without one they fail
# under CI=true and are skipped otherwise.
if [ "$(id -u)" = 0 ] && [ -z "${WARD_TEST_POSTGRES:-}" ] && command -v pg_ctlcluster >/dev/null; then
	pgver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
	[ -d "/etc/postgresql/$pgver/main" ] || pg_createcluster "$pgver" main >/dev/null
	if ! pg_ctlcluster "$pgver" main status >/dev/null 2>&1; then
		step "start PostgreSQL $pgver"
		pg_ctlcluster "$pgver" main start
	fi
	runuser -u postgres -- psql -qAtc "SELECT 1 FROM pg_roles WHERE rolname = '$(id -un)'" | grep -q 1 ||
		runuser -u postgres -- createuser --superuser "$(id -un)"
	export WARD_TEST_POSTGRES="host=/var/run/postgresql dbname=postgres"
fi

step "tools"
command -v buf >/dev/null || go install github.com/bufbuild/buf/cmd/buf@v1.75.0
command -v protoc-gen-go >/dev/null || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
command -v protoc-gen-go-grpc >/dev/null || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:"; echo "$unformatted"; exit 1
fi

step "buf lint"
(cd proto && buf lint)
if git rev-parse -q --verify 'HEAD~1:proto/buf.yaml' >/dev/null 2>&1; then
	step "buf breaking (against the previous commit)"
	(cd proto && buf breaking --against '../.git#ref=HEAD~1,subdir=proto')
fi

step "go generate is reproducible"
go generate ./...
if ! git diff --quiet -- proto; then
	echo "generated code differs from what is committed:"; git diff --stat -- proto; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...

step "cross-build (CGO_ENABLED=0)"
for target in linux/amd64 linux/arm64 windows/amd64 windows/arm64 darwin/amd64 darwin/arm64; do
	echo "  $target"
	CGO_ENABLED=0 GOOS="${target%/*}" GOARCH="${target#*/}" go build -o /dev/null ./...
	# The auditor's verifier, on its own: a binary per platform.
	CGO_ENABLED=0 GOOS="${target%/*}" GOARCH="${target#*/}" go build -o /dev/null ./evidence/cmd/ward-verify
done

step "ward-verify needs no collector, agent, database or network code"
bad=$(go list -deps ./evidence/cmd/ward-verify | grep -E '^github.com/wardhq/ward/(collector|agent)(/|$)|^database/|^net/http|^google.golang.org/grpc|sqlite|pgx' || true)
if [ -n "$bad" ]; then
	echo "ward-verify imports:"; echo "$bad"; exit 1
fi

step "go test (installer/build's tests build the deb/rpm/msi/macOS packages; as root with CI=true they also dpkg install, upgrade and purge)"
# The browser tests keep their screenshots here (a CI job can upload the
# directory; .gitignore keeps it out of the repository).
if [ -z "${WARD_ARTEFACTS:-}" ]; then
	export WARD_ARTEFACTS="$PWD/test-artefacts"
	rm -rf "$WARD_ARTEFACTS"
fi
mkdir -p "$WARD_ARTEFACTS"
# The package builds and installs real packages; on a loaded machine it
# outlasts go test's default 10-minute limit per package.
go test -count=1 -timeout 30m "$@" ./...
echo "screenshots of the browser tests: $WARD_ARTEFACTS ($(find "$WARD_ARTEFACTS" -name '*.png' | wc -l) files)"
