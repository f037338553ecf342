#!/usr/bin/env bash
# The peers a user would pick instead of mmapd, measured on this machine so
# that mmapd-bench's numbers can be read next to them (run one right after
# the other, on an idle machine):
#   Redis GETRANGE/SETRANGE of 64 B, 50 clients, pipelined 16 deep and not;
#   nginx serving a 1 GiB file (sendfile) to curl; iperf3 over loopback.
# Needs redis-server, redis-benchmark, nginx, curl and iperf3 (Debian:
# `apt-get install redis-server nginx-light iperf3 curl`); not part of the
# tests. Usage: server/benches/peers.sh [--quick]
set -euo pipefail
requests=2000000; size_mb=1024
if [[ "${1:-}" == "--quick" ]]; then requests=400000; size_mb=256; fi
for tool in redis-server redis-benchmark nginx curl iperf3; do
  command -v "$tool" >/dev/null || { echo "peers.sh: $tool is not installed" >&2; exit 2; }
done
work=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

redis-server --port 6399 --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p 6399 ping >/dev/null 2>&1; do sleep 0.1; done
redis-cli -p 6399 setrange k 1048575 z >/dev/null  # a 1 MiB value
rb() { redis-benchmark -p 6399 -c 50 -n "$requests" -q "$@" | tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -1; }
echo "Redis GETRANGE 64 B -c50 -P16: $(rb -P 16 getrange k 1000 1063)"
echo "Redis SETRANGE 64 B -c50 -P16: $(rb -P 16 setrange k 1000 "$(printf 'x%.0s' {1..64})")"
echo "Redis GETRANGE 64 B -c50:      $(rb getrange k 1000 1063)"
echo "Redis SETRANGE 64 B -c50:      $(rb setrange k 1000 "$(printf 'x%.0s' {1..64})")"

chmod 755 "$work"; mkdir -p "$work/www"
head -c "$((size_mb << 20))" /dev/urandom >"$work/www/big"; chmod 644 "$work/www/big"
cat >"$work/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 64; }
http { access_log off; sendfile on; tcp_nopush on;
  server { listen 127.0.0.1:8099; root $work/www; } }
CONF
nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
until curl -sf -o /dev/null http://127.0.0.1:8099/big -r 0-0; do sleep 0.1; done
cat "$work/www/big" >/dev/null
for pass in 1 2 3; do
  speed=$(curl -sf -o /dev/null -w '%{speed_download}' http://127.0.0.1:8099/big)
  echo "nginx ${size_mb} MiB download (pass $pass): $(awk -v s="$speed" 'BEGIN{printf "%.2f GB/s", s/1e9}')"
done

iperf3 -s -p 5299 -1 >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
iperf3 -c 127.0.0.1 -p 5299 -t 5 -f g | awk '/receiver/ {print "iperf3 loopback: " $(NF-2)/8 " GB/s (" $(NF-2) " Gbit/s)"}'
