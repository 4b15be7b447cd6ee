#!/usr/bin/env bash
# Measures `ward-agent check` on this machine next to the raw OS queries it
# runs (see scripts/benchcheck). Run as root, like the agent.
#   scripts/bench-check.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/ward-agent" ./agent/cmd/ward-agent
"$tmp/ward-agent" bundle "$tmp/bundle.tar.gz"
go run ./scripts/benchcheck -n "$n" -agent "$tmp/ward-agent" "$tmp/bundle.tar.gz"
