#!/usr/bin/env bash
# The many-hosts test bed: every process in its own network namespace ("host"),
# all joined by veth pairs to one bridge, 10.77.0.0/24. Needs root and iproute2.
#
#   bed.sh up [workers]      build nothing; create hosts, start NATS x3, FerretDB,
#                            API x2, haproxy and the first N workers (default 1)
#   bed.sh down              stop every process of the bed, delete hosts and bridge
#   bed.sh start HOST        (re)start the process of HOST (nats1..3, ferret, api1..2, lb, w1..w6)
#   bed.sh kill HOST [SIG]   send SIG (default KILL) to HOST's process
#   bed.sh link HOST up|down connect or cut HOST from the bridge
#
# Binaries and state: CLUSTER_DIR (default /tmp/mcp-cluster) holds bin/, the
# generated configs, data/, logs/ and pids/. scripts/cluster-test.sh builds the
# binaries into CLUSTER_DIR/bin and drives everything.
set -euo pipefail

DIR=${CLUSTER_DIR:-/tmp/mcp-cluster}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BR=mcpc-br0
NET=10.77.0
PREFIX=mcpc-

# host name -> last octet of its address.
declare -A IP=([nats1]=11 [nats2]=12 [nats3]=13 [ferret]=20 [lb]=30 [api1]=31 [api2]=32
	[w1]=41 [w2]=42 [w3]=43 [w4]=44 [w5]=45 [w6]=46)
HOSTS=(nats1 nats2 nats3 ferret lb api1 api2 w1 w2 w3 w4 w5 w6)

die() { echo "bed: $*" >&2; exit 1; }
addr() { echo "$NET.${IP[$1]}"; }
known() { [[ -n ${IP[$1]:-} ]] || die "unknown host $1"; }

# pid_of HOST prints the pid of HOST's process when it is alive and still in
# HOST's namespace (a recycled pid elsewhere is never touched).
pid_of() {
	local f=$DIR/pids/$1.pid pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ -d /proc/$pid ]] || return 1
	[[ $(ip netns identify "$pid" 2>/dev/null) == "$PREFIX$1" ]] || return 1
	echo "$pid"
}

# alive HOST: HOST's process has not exited. (Not pid_of: right after start
# the process may not have entered HOST's namespace yet.)
alive() {
	local f=$DIR/pids/$1.pid
	[[ -f $f && -d /proc/$(<"$f") ]]
}

down() {
	local h pid ns
	for h in "${HOSTS[@]}"; do
		if pid=$(pid_of "$h"); then kill -9 "$pid" 2>/dev/null || true; fi
	done
	# Anything else still running inside our namespaces was started by us too.
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX" || true); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	for h in "${HOSTS[@]}"; do ip link del "vh-$h" 2>/dev/null || true; done
	ip link del "$BR" 2>/dev/null || true
	rm -rf "$DIR/data" "$DIR/pids" "$DIR/conf"
}

# secret NAME prints a generated secret, the same for the whole run.
secret() {
	local f=$DIR/secrets/$1
	if [[ ! -s $f ]]; then
		mkdir -p "$DIR/secrets" && chmod 700 "$DIR/secrets"
		case $1 in
		fernet) head -c 32 /dev/urandom | base64 | tr '+/' '-_' >"$f" ;;
		*) head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f" ;;
		esac
	fi
	cat "$f"
}

make_host() {
	local h=$1 ns=$PREFIX$1
	ip netns add "$ns"
	ip link add "vh-$h" type veth peer name eth0 netns "$ns"
	ip link set "vh-$h" master "$BR" up
	ip -n "$ns" addr add "$(addr "$h")/24" dev eth0
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
	# No default route: a host reaches the bridge subnet and nothing else.
}

# The production NATS config, with the route host names replaced by the
# hosts' addresses and the store directory moved under DIR.
nats_conf() {
	local i f
	mkdir -p "$DIR/conf"
	for i in 1 2 3; do
		f=$DIR/conf/nats$i.conf
		sed -e "s#nats-route://nats-\([123]\):6222#nats-route://$NET.1\1:6222#" \
			-e "s#\"/data/jetstream\"#\"$DIR/data/nats$i\"#" \
			-e 's#max_file_store: 20GB#max_file_store: 2GB#' \
			"$ROOT/deploy/nats/nats-cluster.conf" >"$f"
		grep -q "$NET.11:6222" "$f" && grep -q "$DIR/data/nats$i" "$f" ||
			die "deploy/nats/nats-cluster.conf: routes or store_dir not found"
	done
}

lb_conf() {
	mkdir -p "$DIR/conf"
	cat >"$DIR/conf/haproxy.cfg" <<EOF
global
	maxconn 4096
defaults
	mode http
	timeout connect 1s
	timeout client 60s
	# Longer than MCP_JOB_TIMEOUT (30s): a node that answers nothing gets a 504 here.
	timeout server 35s
	retries 2
	option redispatch
frontend api
	bind $(addr lb):8001
	default_backend apis
backend apis
	balance roundrobin
	option httpchk GET /readyz
	timeout check 3s
	default-server inter 1s fall 3 rise 2
	server api1 $(addr api1):8001 check
	server api2 $(addr api2):8001 check
EOF
}

nats_urls() { # user password
	local u=$1 p=$2 out="" i
	for i in 1 2 3; do out+="${out:+,}nats://$u:$p@$NET.1$i:4222"; done
	echo "$out"
}

# The environment of each process, one VAR=value a line.
host_env() {
	local h=$1
	echo "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
	case $h in
	nats*)
		echo "NATS_SERVER_NAME=nats-${h#nats}"
		echo "NATS_MCP_API_PASSWORD=$(secret nats-api)"
		echo "NATS_MCP_WORKER_PASSWORD=$(secret nats-worker)"
		echo "NATS_CALLER_USER_123_PASSWORD=$(secret nats-caller)"
		echo "NATS_SYS_PASSWORD=$(secret nats-sys)"
		return ;;
	ferret | lb) return ;;
	esac
	echo "AGENT_API_KEY=$(secret api-key)"
	echo "DB_ENCRYPTION_KEY=$(secret fernet)"
	echo "MONGODB_URI=mongodb://$(addr ferret):27017/"
	echo "MCP_STREAM_REPLICAS=3"
	echo "MCP_ALLOW_PRIVATE_HOSTS=false"
	echo "MCP_ALLOWED_HOST_CIDRS=$NET.0/24"
	if [[ -n ${CLUSTER_JOB_TIMEOUT:-} ]]; then echo "MCP_JOB_TIMEOUT=$CLUSTER_JOB_TIMEOUT"; fi
	echo "MCP_DB_MAX_CONNECTIONS=${CLUSTER_DB_BUDGET:-8}"
	echo "MCP_LOG_LEVEL=${CLUSTER_LOG_LEVEL:-warn}"
	echo "MCP_NODE_ID=$h"
	case $h in
	api*)
		echo "NATS_URL=$(nats_urls mcp-api "$(secret nats-api)")"
		echo "MCP_SERVICE_HOST=0.0.0.0"
		echo "MCP_SERVICE_PORT=8001" ;;
	w*)
		echo "NATS_URL=$(nats_urls mcp-worker "$(secret nats-worker)")"
		echo "MCP_METRICS_ADDR=:9090" ;;
	esac
}

start() {
	local h=$1 cmd
	known "$h"
	if pid_of "$h" >/dev/null; then die "$h is already running"; fi
	case $h in
	nats*) cmd=("$DIR/bin/nats-server" -c "$DIR/conf/$h.conf") ;;
	ferret) cmd=("$DIR/bin/clusterbench" ferret -listen 0.0.0.0:27017 -dir "$DIR/data/ferret") ;;
	lb) cmd=(haproxy -db -f "$DIR/conf/haproxy.cfg") ;;
	api*) cmd=("$DIR/bin/mcp-service" api) ;;
	w*) cmd=("$DIR/bin/mcp-service" worker) ;;
	esac
	mkdir -p "$DIR/logs" "$DIR/pids"
	local -a env
	mapfile -t env < <(host_env "$h")
	# setsid, ip netns exec and env each exec the next: $! is the process itself.
	setsid ip netns exec "$PREFIX$h" env -i "${env[@]}" "${cmd[@]}" \
		>>"$DIR/logs/$h.log" 2>&1 </dev/null &
	echo $! >"$DIR/pids/$h.pid"
}

# wait_http URL [HOST]: until URL answers 200, at most 30 s; fail at once
# when HOST's process has exited.
wait_http() {
	local i
	for i in $(seq 150); do
		curl -fsS -o /dev/null -m 1 "$1" 2>/dev/null && return 0
		if [[ -n ${2:-} ]] && ! alive "$2"; then
			die "$2 exited: $(tail -n 3 "$DIR/logs/$2.log")"
		fi
		sleep 0.2
	done
	die "$1 did not come up (logs: $DIR/logs)"
}

up() {
	local n=${1:-1} h i
	[[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
	for b in nats-server clusterbench mcp-service; do
		[[ -x $DIR/bin/$b ]] || die "missing $DIR/bin/$b (scripts/cluster-test.sh builds it)"
	done
	command -v haproxy >/dev/null || die "haproxy missing: apt-get install -y haproxy"
	down
	mkdir -p "$DIR/data" "$DIR/logs"
	rm -f "$DIR"/logs/*.log
	ip link add "$BR" type bridge
	ip addr add "$NET.1/24" dev "$BR"
	ip link set "$BR" up
	for h in "${HOSTS[@]}"; do make_host "$h"; done
	nats_conf
	lb_conf
	for h in nats1 nats2 nats3; do start "$h"; done
	start ferret
	# JetStream is usable once every node is healthy (/healthz checks that it
	# is current with an elected meta leader). The service gives up at once
	# when its first stream request times out, so do not start it earlier.
	for h in nats1 nats2 nats3; do wait_http "http://$(addr "$h"):8222/healthz" "$h"; done
	start api1
	wait_http "http://$(addr api1):8001/readyz" api1
	start api2
	for i in $(seq "$n"); do start "w$i"; done
	start lb
	wait_http "http://$(addr api2):8001/readyz" api2
	for i in $(seq "$n"); do wait_http "http://$(addr "w$i"):9090/healthz" "w$i"; done
	wait_http "http://$(addr lb):8001/readyz"
}

cmd=${1:-}
shift || true
case $cmd in
up) up "$@" ;;
down) down ;;
start) start "$1" ;;
kill)
	known "$1"
	pid=$(pid_of "$1") || die "$1 is not running"
	kill "-${2:-KILL}" "$pid" ;;
link)
	known "$1"
	[[ ${2:-} == up || ${2:-} == down ]] || die "link HOST up|down"
	ip link set "vh-$1" "$2" ;;
*) sed -n '2,14p' "$0"; exit 2 ;;
esac
