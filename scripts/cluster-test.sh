#!/usr/bin/env bash
# make cluster-test: the service on many simulated hosts (network namespaces
# on one bridge), under a mixed sync/async load, through NATS leader kills,
# a worker kill, an API node cut off the network and scale out/in. Prints
# what every request got, the user database connection peak and the
# recovery time after each fault. Needs root, iproute2 and haproxy.
#   make cluster-test                      # full run, ~3-4 minutes
#   CLUSTER_REDUCED=1 make cluster-test    # CI: ~1 minute, fewer faults
# The bed is torn down on exit; CLUSTER_KEEP=1 leaves it up for poking
# (scripts/cluster/bed.sh down removes it). Logs: $CLUSTER_DIR/logs.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export CLUSTER_DIR=${CLUSTER_DIR:-/tmp/mcp-cluster}
BED=scripts/cluster/bed.sh

[[ $(id -u) == 0 ]] || { echo "cluster-test: needs root (ip netns)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "cluster-test: apt-get install -y haproxy" >&2; exit 1; }

cleanup() {
	local rc=$?
	if [[ -z ${CLUSTER_KEEP:-} ]]; then $BED down || true; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
mkdir -p "$CLUSTER_DIR/bin"
# Fresh secrets every run; the bed reads them from CLUSTER_DIR/secrets.
rm -rf "$CLUSTER_DIR/secrets"
echo "cluster-test: building into $CLUSTER_DIR/bin"
CGO_ENABLED=0 $GO build -trimpath -o "$CLUSTER_DIR/bin/mcp-service" ./cmd/mcp-service
CGO_ENABLED=0 $GO build -trimpath -o "$CLUSTER_DIR/bin/clusterbench" ./cmd/clusterbench
# The NATS server the repository depends on (go.mod), not the distribution's.
CGO_ENABLED=0 $GO build -trimpath -o "$CLUSTER_DIR/bin/nats-server" github.com/nats-io/nats-server/v2

echo "cluster-test: bed up (3 NATS, FerretDB, 2 API + haproxy, 1 worker) after a clean-up of any previous run"
$BED up 1
echo "cluster-test: bed up in $((SECONDS - t0))s; $("$CLUSTER_DIR/bin/nats-server" --version)"
args=(run -dir "$CLUSTER_DIR" -bed "$BED" -budget "${CLUSTER_DB_BUDGET:-8}")
if [[ -n ${CLUSTER_REDUCED:-} ]]; then args+=(-reduced); fi
"$CLUSTER_DIR/bin/clusterbench" "${args[@]}"
echo "cluster-test: $((SECONDS - t0))s in all"
