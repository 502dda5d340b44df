#!/usr/bin/env bash
# verdictd demo: installs the Debian packages, builds, and runs verdictd on its
# embedded default configuration inside a throwaway namespace topology
#
#   client (10.202.1.10-13) -- firewall (NFQUEUE -> verdictd) -- server (10.202.2.2)
#
# with live traffic (ping and UDP), printing what verdictd does. Everything it
# creates is removed on exit, also on failure or Ctrl-C. Run as root:
#   bash deploy/demo.sh
# (VERDICTD_BIN=path/to/verdictd skips the install and build steps.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ $(id -u) -ne 0 ]]; then
  echo "demo: needs root (network namespaces, iptables, CAP_NET_ADMIN)" >&2
  exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [[ -n "${VERDICTD_BIN:-}" ]]; then
  bin="$VERDICTD_BIN"  # an already built binary: skip install and build
else
  step "installing packages"
  bash .ci/install-deps

  step "building verdictd (build/)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$(nproc)" --target verdictd
  bin="$root/build/service/verdictd"
fi

tag="vdemo$$"
client="${tag}c" firewall="${tag}f" server="${tag}s"
log="$(mktemp /tmp/verdictd-demo.XXXXXX.log)"
daemon_pid=""
cleanup() {
  set +e
  [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  for ns in "$client" "$firewall" "$server"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
inns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

step "namespaces: client -- firewall -- server"
for ns in "$client" "$firewall" "$server"; do ip netns add "$ns"; inns "$ns" ip link set lo up; done
inns "$client" ip link add c0 type veth peer name f0 netns "$firewall"
inns "$firewall" ip link add f1 type veth peer name s0 netns "$server"
for i in 10 11 12 13; do inns "$client" ip addr add "10.202.1.$i/24" dev c0; done
inns "$firewall" ip addr add 10.202.1.1/24 dev f0
inns "$firewall" ip addr add 10.202.2.1/24 dev f1
inns "$server" ip addr add 10.202.2.2/24 dev s0
inns "$client" ip link set c0 up
inns "$firewall" ip link set f0 up
inns "$firewall" ip link set f1 up
inns "$server" ip link set s0 up
inns "$client" ip route add default via 10.202.1.1
inns "$server" ip route add default via 10.202.2.1
inns "$firewall" sysctl -qw net.ipv4.ip_forward=1

# The default configuration binds one queue per CPU starting at 0.
cpus=$(nproc)
last=$((cpus - 1))
rule=(FORWARD -j NFQUEUE --queue-balance "0:$last" --queue-cpu-fanout --queue-bypass)
step "firewall rule: iptables -A ${rule[*]}"
inns "$firewall" iptables -A "${rule[@]}"

step "starting verdictd (embedded default configuration) in the firewall namespace"
ip netns exec "$firewall" "$bin" >"$log" 2>&1 &  # exec: $! is verdictd itself
daemon_pid=$!
for _ in $(seq 100); do
  grep -q " running " "$log" && break
  if ! kill -0 "$daemon_pid" 2>/dev/null; then cat "$log"; echo "demo: verdictd did not start" >&2; exit 1; fi
  sleep 0.1
done
cat "$log"

step "ping client -> server through the queue"
inns "$client" ping -c 5 -i 0.2 -I 10.202.1.10 10.202.2.2

step "UDP: 4000 datagrams from 4 client addresses"
inns "$server" python3 - <<'PY' &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)
s.bind(("10.202.2.2", 9000)); s.settimeout(2)
n = 0
try:
    while True:
        s.recv(2048); n += 1
except socket.timeout:
    pass
print(f"server: received {n} datagrams")
PY
receiver=$!
sleep 0.5
inns "$client" python3 - <<'PY'
import socket, time
socks = []
for i in range(10, 14):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((f"10.202.1.{i}", 0)); socks.append(s)
for n in range(4000):
    socks[n % 4].sendto(b"demo" * 32, ("10.202.2.2", 9000))
    if n % 100 == 99: time.sleep(0.005)
print("client: sent 4000 datagrams")
PY
wait "$receiver"

step "kernel view: /proc/net/netfilter/nfnetlink_queue (queue portid waiting copy-mode range dropped user-dropped last-id)"
inns "$firewall" cat /proc/net/netfilter/nfnetlink_queue

if grep -q "metrics" "$log"; then
  step "metrics (first verdictd_ lines of /metrics, if the metrics server is on)"
  inns "$firewall" python3 - <<'PY' || true
import re, urllib.request
try:
    text = urllib.request.urlopen("http://127.0.0.1:9470/metrics", timeout=2).read().decode()
    lines = [l for l in text.splitlines() if l.startswith("verdictd_") and not l.startswith("verdictd_verdict_latency")]
    print("\n".join(lines[:25]))
except Exception as e:
    print(f"(metrics not reachable: {e})")
PY
fi

step "SIGTERM: verdictd drains, unbinds and prints its counters"
kill -TERM "$daemon_pid"
wait "$daemon_pid" && rc=0 || rc=$?
daemon_pid=""
sed -n '/stopping/,$p' "$log"
echo "verdictd exited with status $rc"
step "done (namespaces removed)"
