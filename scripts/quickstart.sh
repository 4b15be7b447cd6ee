#!/usr/bin/env bash
# Ward quick start: on this machine, with embedded SQLite storage, start a
# collector, create an enrolment token, enrol this machine's agent and let it
# report its real state; then show the fleet. Run as root so every check can
# read what it needs. Ctrl-C stops both.
#
#   scripts/quickstart.sh [DATA_DIR]     (as root; default ./ward-data)
set -euo pipefail
cd "$(dirname "$0")/.."

data="$(realpath -m "${1:-ward-data}")"
grpc_addr="${WARD_GRPC_ADDR:-127.0.0.1:8443}"
http_addr="${WARD_HTTP_ADDR:-127.0.0.1:8080}"
bin="$data/bin"
mkdir -p "$bin"

echo "== building ward-collector and ward-agent"
CGO_ENABLED=0 go build -o "$bin/ward-collector" ./collector/cmd/ward-collector
CGO_ENABLED=0 go build -o "$bin/ward-agent" ./agent/cmd/ward-agent

echo "== starting the collector (data in $data)"
"$bin/ward-collector" serve --data "$data" --grpc-addr "$grpc_addr" --http-addr "$http_addr" \
	>"$data/collector.log" 2>&1 &
collector=$!
agent=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null || true
	kill "$collector" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

fingerprint=""
for _ in $(seq 1 100); do
	fingerprint=$(sed -n 's/^CA fingerprint: \(sha256:[0-9a-f]*\)$/\1/p' "$data/collector.log" | head -n1)
	[ -n "$fingerprint" ] && grep -q "collector listening" "$data/collector.log" && break
	kill -0 "$collector" 2>/dev/null || { cat "$data/collector.log"; exit 1; }
	sleep 0.1
done
[ -n "$fingerprint" ] || { echo "collector did not start:"; cat "$data/collector.log"; exit 1; }
echo "   CA fingerprint $fingerprint"

state="$data/agent"
if [ ! -f "$state/device.json" ]; then
	echo "== creating a one-use enrolment token and enrolling this machine"
	token=$("$bin/ward-collector" token create --data "$data" --group default --uses 1 --ttl 1h --json |
		sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
	"$bin/ward-agent" enroll --collector "$grpc_addr" --token "$token" --ca-fingerprint "$fingerprint" --state "$state"
else
	echo "== this machine is already enrolled (state in $state)"
fi

if [ ! -f "$data/admin-password" ]; then
	echo "== creating the dashboard user 'admin'"
	"$bin/ward-collector" user add --data "$data" --role admin admin </dev/null >"$data/admin-password.out"
	sed -n 's/.*password[^:]*: *\([^ ]*\).*/\1/ip' "$data/admin-password.out" | tail -n1 >"$data/admin-password"
	chmod 600 "$data/admin-password" "$data/admin-password.out"
fi

echo "== first report"
"$bin/ward-agent" run --once --state "$state" || true

echo
echo "== fleet"
"$bin/ward-collector" fleet summary --data "$data"
"$bin/ward-collector" devices list --data "$data"
cat <<MSG

Ward is running: collector gRPC on $grpc_addr.
Dashboard: http://$http_addr/  (user admin; password in $data/admin-password.out)
Metrics:   http://$http_addr/metrics
Look around with:
  $bin/ward-collector fleet summary --data $data
  $bin/ward-collector devices list --data $data [--json]
  $bin/ward-collector device show DEVICE_ID --data $data
  $bin/ward-agent check             # this machine's verdicts, offline
The agent keeps reporting every hour (log: $data/agent.log). Ctrl-C stops both.
MSG
"$bin/ward-agent" run --state "$state" >"$data/agent.log" 2>&1 &
agent=$!
wait "$collector"
