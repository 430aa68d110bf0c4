#!/usr/bin/env bash
# Each HTTP lever of issue 14 as its own row, in one run: the plain uvicorn baseline (../shared/bench/baseline_app.py)
# once, then `serve run` once per variant, all measured with the shared harness's client (../shared/bench/load.py).
#   bash bench/http_levers.sh                       # every variant below
#   VARIANTS="pool ingateway_tuned" bash bench/http_levers.sh
# A variant is a name, a configuration and the environment `serve run` gets (Ray's defaults, then these;
# scripts/serve.env is not read). `ingateway_tuned` is what `bash scripts/serve.sh` runs.
# Prints one JSON line per row as it goes, then a Markdown table with the ratios to the baseline.
set -u
cd "$(dirname "$0")/.."
shared=${SHARED_BENCH:-../shared/bench}
[ -f "$shared/load.py" ] || { echo "no $shared/load.py: set SHARED_BENCH" >&2; exit 2; }
PY=${PY:-.venv/bin/python}; SERVE=${SERVE:-.venv/bin/serve}
SIZE=${SIZE:-512x512}; N1=${N1:-150}; N16=${N16:-300}
out=$(mktemp); log=$(mktemp -d)
# The configurations compared, all made from serve_config.yaml:
# - pool: Pillow in a pool of its own (runs_in: pool, 0.75 CPU per replica: two fit on 2 cores);
# - untuned: the pool as it was before issue 14, one Pillow replica of 1 CPU (the second never fits on 2 cores);
# - ingateway: Pillow as threads of the gateway replica (runs_in: gateway, serve_config.yaml's own choice);
# - ingateway2: the same with two gateway replicas from the start (one Python process, one GIL, per core).
pool=$(mktemp --suffix=.yaml); untuned=$(mktemp --suffix=.yaml)
ingateway=$(mktemp --suffix=.yaml); ingateway2=$(mktemp --suffix=.yaml)
"$PY" - serve_config.yaml "$pool" "$untuned" "$ingateway" "$ingateway2" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
args = config["applications"][0]["args"]
pillow = args["backends"]["pillow"]
pillow["runs_in"] = "pool"
yaml.safe_dump(config, open(sys.argv[2], "w"))
pillow["deployment"]["ray_actor_options"]["num_cpus"] = 1
yaml.safe_dump(config, open(sys.argv[3], "w"))
pillow["deployment"]["ray_actor_options"]["num_cpus"] = 0.75
pillow["runs_in"] = "gateway"
yaml.safe_dump(config, open(sys.argv[4], "w"))
args["gateway"]["autoscaling_config"] = {"min_replicas": 2, "max_replicas": 2, "target_ongoing_requests": 8}
yaml.safe_dump(config, open(sys.argv[5], "w"))
PY
declare -A CONFIGS=([untuned]="$untuned" [ingateway]="$ingateway" [ingateway_tuned]="$ingateway"
                    [ingateway2_tuned]="$ingateway2" [ingateway_haproxy]="$ingateway" [ingateway_slowpoll]="$ingateway")
declare -A ENVS  # every variant not in CONFIGS serves the pool
ENVS[untuned]=""
ENVS[pool]=""
ENVS[throughput]="RAY_SERVE_THROUGHPUT_OPTIMIZED=1"
ENVS[grpc]="RAY_SERVE_USE_GRPC_BY_DEFAULT=1"
ENVS[logbuffer]="RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE=1000"
ENVS[gcfreeze]="RAY_SERVE_FREEZE_GC_ON_STARTUP=1"
ENVS[haproxy]="RAY_SERVE_THROUGHPUT_OPTIMIZED=1 RAY_SERVE_ENABLE_HA_PROXY=1"
ENVS[inline]="RAY_max_direct_call_object_size=8388608"
ENVS[tp_inline]="RAY_SERVE_THROUGHPUT_OPTIMIZED=1 RAY_max_direct_call_object_size=8388608"
ENVS[tuned]="$(grep -v '^#' scripts/serve.env | xargs)"
ENVS[ingateway]=""
ENVS[ingateway_tuned]="${ENVS[tuned]}"
ENVS[ingateway2_tuned]="${ENVS[tuned]}"
ENVS[ingateway_haproxy]="${ENVS[tuned]} RAY_SERVE_ENABLE_HA_PROXY=1"
# Ray's own background, polled less often: the Serve controller's loop (0.1 s), replicas' metrics export (0.1 s),
# the core metrics agent's report (10 s).
ENVS[ingateway_slowpoll]="${ENVS[tuned]} RAY_SERVE_CONTROL_LOOP_INTERVAL_S=0.5 RAY_SERVE_METRICS_EXPORT_INTERVAL_MS=1000 RAY_metrics_report_interval_ms=30000"
VARIANTS=${VARIANTS:-"untuned pool throughput grpc logbuffer gcfreeze haproxy inline tuned ingateway ingateway_tuned ingateway2_tuned ingateway_haproxy ingateway_slowpoll"}
for v in $VARIANTS; do printf '%s\t%s\n' "$v" "${ENVS[$v]}"; done >"$log/variants"

# CPU seconds used so far by every process of a session (the server's whole process tree: Ray's raylet, GCS,
# dashboard, agents, proxy, replicas), from /proc in clock ticks. Unlike latency it does not move with the load
# that other programs put on a shared machine, and on a saturated machine img/s ≈ cores / (CPU s per image).
cpu_s() { "$PY" bench/serve_floor.py --cpu-of "$1"; }
# row NAME URL N C SID: the harness's JSON line plus the server's CPU milliseconds per image over the run (the
# harness's own warm-up requests included in the CPU, so a slight over-count).
row() {
  local before after line
  before=$(cpu_s "$5")
  line=$("$PY" "$shared/load.py" "$2" "$3" "$4" "$SIZE" | cut -c2-)
  after=$(cpu_s "$5")
  echo "{\"row\":\"$1\",\"cpu_ms_img\":$("$PY" -c "print(round(($after-$before)*1000/($3+5),1))"),$line" | tee -a "$out"
}
wait_ok() { for _ in $(seq 1 "$2"); do curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null | grep -q 200 && return 0; sleep 1; done; return 1; }

(exec setsid "$PY" -m uvicorn --app-dir "$shared" baseline_app:app --port 8100 --log-level warning >"$log/baseline" 2>&1) &
B=$!
for _ in $(seq 1 60); do curl -s -o /dev/null localhost:8100/ && break; sleep 0.5; done  # any answer: it is up
row "baseline c1" http://127.0.0.1:8100 "$N1" 1 "$B"; row "baseline c16" http://127.0.0.1:8100 "$N16" 16 "$B"
kill -INT -- "-$B"; wait "$B" 2>/dev/null

for v in $VARIANTS; do
  (exec setsid env ${ENVS[$v]} "$SERVE" run "${CONFIGS[$v]:-$pool}" >"$log/$v" 2>&1) & S=$!
  if wait_ok localhost:8000/healthz 180; then
    sleep 3
    row "$v c1" http://127.0.0.1:8000 "$N1" 1 "$S"; row "$v c16" http://127.0.0.1:8000 "$N16" 16 "$S"
  else
    echo "{\"row\":\"$v\",\"error\":\"did not start: $(tail -c 300 "$log/$v" | tr -d '\"\n')\"}" >&2
  fi
  kill -INT -- "-$S" 2>/dev/null; sleep 5; kill -KILL -- "-$S" 2>/dev/null; wait "$S" 2>/dev/null
  # The whole session, not only the group: Ray's haproxy (RAY_SERVE_ENABLE_HA_PROXY) runs in a group of its own and
  # would keep port 8000 for the next variant.
  pkill -KILL -s "$S" 2>/dev/null; sleep 1
done

"$PY" - "$out" "$log/variants" <<'PY'
import json, sys
r = {d["row"]: d for d in map(json.loads, open(sys.argv[1]))}
variants = [line.rstrip("\n").split("\t") for line in open(sys.argv[2])]
b1, b16 = r["baseline c1"], r["baseline c16"]
print("| variant | env | p50 c1 ms | × baseline | p50 c16 ms | img/s c16 | × baseline | CPU ms/img c16 | × baseline | failures |")
print("|---|---|---|---|---|---|---|---|---|---|")
print(f"| plain uvicorn | | {b1['p50']} | 1.00 | {b16['p50']} | {b16['img_s']} | 1.00 | {b16['cpu_ms_img']} | 1.00 | "
      f"{b1['fails'] + b16['fails']} |")
for v, env in variants:
    if f"{v} c1" not in r:
        print(f"| {v} | {env} (did not start) | | | | | | | | |")
        continue
    c1, c16 = r[f"{v} c1"], r[f"{v} c16"]
    print(f"| {v} | {env} | {c1['p50']} | {c1['p50'] / b1['p50']:.2f} | {c16['p50']} | {c16['img_s']} | "
          f"{c16['img_s'] / b16['img_s']:.2f} | {c16['cpu_ms_img']} | {c16['cpu_ms_img'] / b16['cpu_ms_img']:.2f} | "
          f"{c1['fails'] + c16['fails']} |")
PY
