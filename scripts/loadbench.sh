#!/usr/bin/env bash
# Ward load benchmark: on a fresh data directory, start ward-collector serve
# (SQLite; with --store postgres://… on that database instead), create an
# enrolment token, and run ward-loadgen against it: kept connections and a
# fresh connection per report, each flat out and then at half the peak rate
# it found (for p99), every run next to the no-op ceiling and verified
# stored = acknowledged; then the enrolment rate of 10,000 devices. Prints
# one table; the runs' JSON stays in the output directory.
#
#   scripts/loadbench.sh [--store postgres://…] [OUT_DIR]
#   scripts/loadbench.sh --seal-compare [--store postgres://…] [OUT_DIR]
#
# --seal-compare measures what sealing costs instead: kept connections
# and then fresh ones, flat out, alternately unsealed (--seal=false) and
# sealed, PAIRS times each (no ceiling runs), and prints each pair's ratio
# of sealed to unsealed reports/s and their median.
#
# Environment: DEVICES (2000 per run), DURATION (20s), CONCURRENCY (64),
# ENROLL_DEVICES (10000), GRPC_ADDR (127.0.0.1:18443), PAIRS (3).
#
# The collector's enrolment throttle is lifted: every simulated device
# enrols from 127.0.0.1, which the default would rightly take for a flood.
set -euo pipefail
cd "$(dirname "$0")/.."

compare=""
if [ "${1:-}" = "--seal-compare" ]; then
	compare=1
	shift
fi
store=""
if [ "${1:-}" = "--store" ]; then
	store="$2"
	shift 2
fi
out="$(realpath -m "${1:-$(mktemp -d /tmp/ward-loadbench.XXXXXX)}")"
if [ -e "$out/data" ]; then
	echo "loadbench: $out/data exists; give a fresh directory" >&2
	exit 2
fi
devices="${DEVICES:-2000}"
duration="${DURATION:-20s}"
concurrency="${CONCURRENCY:-64}"
enroll_devices="${ENROLL_DEVICES:-10000}"
grpc_addr="${GRPC_ADDR:-127.0.0.1:18443}"
pairs="${PAIRS:-3}"
http_addr="127.0.0.1:$((${grpc_addr##*:} + 1))"
data="$out/data"
bin="$out/bin"
mkdir -p "$bin" "$data"

echo "== building ward-collector and ward-loadgen into $bin"
CGO_ENABLED=0 go build -o "$bin/ward-collector" ./collector/cmd/ward-collector
CGO_ENABLED=0 go build -o "$bin/ward-loadgen" ./collector/cmd/ward-loadgen

store_args=()
[ -n "$store" ] && store_args=(--store "$store")

echo "== starting the collector (data in $data${store:+, store $store})"
"$bin/ward-collector" serve --data "$data" "${store_args[@]}" --grpc-addr "$grpc_addr" --http-addr "$http_addr" \
	--log-level warn \
	--enroll-rate 1000000 --enroll-burst 1000000 --enroll-total-rate 1000000 --enroll-total-burst 1000000 \
	>"$out/collector.log" 2>&1 &
collector=$!
trap 'kill "$collector" 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
fingerprint=""
for _ in $(seq 1 100); do
	fingerprint=$(sed -n 's/^CA fingerprint: \(sha256:[0-9a-f]*\)$/\1/p' "$out/collector.log" | head -n1)
	[ -n "$fingerprint" ] && grep -q "^gRPC on" "$out/collector.log" && break
	kill -0 "$collector" 2>/dev/null || { cat "$out/collector.log"; exit 1; }
	sleep 0.1
done
[ -n "$fingerprint" ] || { echo "collector did not start:"; cat "$out/collector.log"; exit 1; }

token=$("$bin/ward-collector" token create --data "$data" "${store_args[@]}" --group default \
	--uses $((4 * devices + 4 * pairs * devices + enroll_devices)) --ttl 4h --json | jq -r .token)

verify_args=(--data "$data")
[ -n "$store" ] && verify_args=(--store "$store")
loadgen() {
	"$bin/ward-loadgen" --addr "$grpc_addr" --ca-fingerprint "$fingerprint" --token "$token" \
		--concurrency "$concurrency" --json "$@"
}

# A run that fails (a store that does not match its acknowledgements
# included) is still tabled; the script's exit status says so.
status=0
runs=()
measure() {
	local name="$1"
	shift
	loadgen "$@" >"$out/$name.json" || status=1
	[ -s "$out/$name.json" ] && runs+=("$out/$name.json")
}
if [ -n "$compare" ]; then
	for mode in kept fresh; do
		ratios=()
		for n in $(seq 1 "$pairs"); do
			echo "== $mode, pair $n of $pairs: $devices devices flat out for $duration, unsealed then sealed"
			measure "$mode-unsealed-$n" --mode "$mode" --devices "$devices" --duration "$duration" --ceiling=false --seal=false "${verify_args[@]}"
			measure "$mode-sealed-$n" --mode "$mode" --devices "$devices" --duration "$duration" --ceiling=false "${verify_args[@]}"
			ratios+=("$(jq -n --slurpfile u "$out/$mode-unsealed-$n.json" --slurpfile s "$out/$mode-sealed-$n.json" \
				'$s[0].ward.reports_per_second / $u[0].ward.reports_per_second * 1000 | round / 1000')")
		done
		median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
		echo "$mode: sealed/unsealed reports/s by pair: ${ratios[*]}; median $median" | tee -a "$out/ratios.txt"
	done
	echo
	uname -sr
	nproc | sed 's/$/ cores/'
	echo "store: ${store:-SQLite in $data}"
	"$bin/ward-loadgen" table "${runs[@]}"
	echo
	cat "$out/ratios.txt"
	echo "JSON of each run and the collector's log: $out"
	exit "$status"
fi
for mode in kept fresh; do
	echo "== $mode: $devices devices, flat out for $duration"
	measure "$mode-flat" --mode "$mode" --devices "$devices" --duration "$duration" "${verify_args[@]}"
	half=$(jq '(.ward.reports_per_second // 0) / 2 | floor' "$out/$mode-flat.json" 2>/dev/null || echo 0)
	if [ "$half" -lt 1 ]; then
		echo "loadbench: no peak rate from the $mode run" >&2
		status=1
		continue
	fi
	echo "== $mode: $devices devices at half the peak, $half reports/s, for $duration"
	measure "$mode-half" --mode "$mode" --devices "$devices" --duration "$duration" --rate "$half" "${verify_args[@]}"
done
echo "== enrolment: $enroll_devices devices"
measure enrol --devices "$enroll_devices" --duration 0

echo
uname -sr
nproc | sed 's/$/ cores/'
echo "store: ${store:-SQLite in $data}"
"$bin/ward-loadgen" table "${runs[@]}"
echo
echo "JSON of each run and the collector's log: $out"
exit "$status"
