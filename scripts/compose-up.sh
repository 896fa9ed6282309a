#!/usr/bin/env bash
# `docker-compose up -d`, then wait (bounded) until every container is
# healthy (the one-shot `certs` exited 0) and the cluster serves: a
# collection with a replica on every storage node can be created, written
# and deleted through the load balancer. docker-compose 1.29 has no --wait.
#
#   scripts/compose-up.sh                                  # docker-compose.yml
#   scripts/compose-up.sh -p chaos1 -f docker-compose.yml -f docker/chaos.compose.yml
#
# Arguments are docker-compose's global options (-p, -f, ...), passed as
# they are. Variables: UP_TIMEOUT (180 s, the whole wait), LB_PORT
# (host port of the REST API, 15001), plus docker-compose.yml's own.
# Prints the REST URL last (`REST http://127.0.0.1:<port>`).
set -euo pipefail
cd "$(dirname "$0")/.."
UP_TIMEOUT=${UP_TIMEOUT:-180}
opts=("$@")
dc() { docker-compose "${opts[@]}" "$@"; }

t0=$(date +%s)
deadline=$((t0 + UP_TIMEOUT))
left() { echo $((deadline - $(date +%s))); }
elapsed() { echo $(($(date +%s) - t0)); }

for img in "${VECTORDB_IMAGE:-vectordb:local}" "${VECTORDB_LB_IMAGE:-vectordb-lb:local}"; do
  if ! docker image inspect "$img" >/dev/null 2>&1; then
    echo "image $img is missing: scripts/docker-images.sh builds it offline," \
      "docker-compose build from public images" >&2
    exit 1
  fi
done

echo "== docker-compose up -d"
# Blocks while dependencies become healthy (depends_on conditions).
if ! timeout "$(left)" docker-compose "${opts[@]}" up -d; then
  echo "docker-compose up failed or timed out after $(elapsed) s" >&2
  dc ps >&2 || true
  exit 1
fi
echo "   containers started after $(elapsed) s"

# Every container healthy; one-shots (no health check) exited 0.
last=""
while :; do
  mapfile -t ids < <(dc ps -q)
  total=${#ids[@]}
  ready=0
  waiting=()
  for id in "${ids[@]}"; do
    read -r name status health code < <(docker inspect -f \
      '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' "$id")
    name=${name#/}
    if [ "$health" = healthy ] || { [ "$health" = none ] && [ "$status" = exited ] && [ "$code" = 0 ]; }; then
      ready=$((ready + 1))
    elif [ "$status" = exited ] || [ "$status" = dead ]; then
      echo "container $name exited with code $code:" >&2
      docker logs --tail 40 "$id" >&2 || true
      exit 1
    else
      waiting+=("$name:$status/$health")
    fi
  done
  if [ "$total" -gt 0 ] && [ "$ready" -eq "$total" ]; then
    echo "   all $total containers healthy after $(elapsed) s"
    break
  fi
  line="   healthy $ready/$total, waiting for ${waiting[*]:-}"
  [ "$line" = "$last" ] || echo "$line"
  last=$line
  if [ "$(left)" -le 0 ]; then
    echo "timed out after $(elapsed) s" >&2
    dc ps >&2 || true
    exit 1
  fi
  sleep 1
done

port=$(dc port lb 15001 | tail -n 1)
port=${port##*:}
url="http://127.0.0.1:$port"
storage=$(dc config --services | grep -c '^storage' || true)
key=()
[ -z "${GATEWAY_API_KEY:-}" ] || key=(-H "api-key: $GATEWAY_API_KEY")
req() { curl -sS --max-time 15 "${key[@]}" -H 'content-type: application/json' "$@"; }

# A replica on every storage node (replication_factor = their number), so
# this passes only once all of them are registered and serving.
probe=compose_up_probe
echo "== probe collection through $url (1 shard x $storage replicas)"
req -X DELETE "$url/collections/$probe" >/dev/null 2>&1 || true
last=""
while :; do
  out=$(req -X PUT "$url/collections/$probe" \
    -d "{\"vectors\":{\"size\":2,\"distance\":\"Cosine\"},\"shard_number\":1,\"replication_factor\":$storage}" 2>&1) || true
  if echo "$out" | grep -q '"status":"ok"'; then
    out=$(req -X PUT "$url/collections/$probe/points?wait=true" \
      -d '{"points":[{"id":1,"vector":[1.0,0.5]}]}' 2>&1) || true
    if echo "$out" | grep -q '"status":"ok"'; then break; fi
    req -X DELETE "$url/collections/$probe" >/dev/null 2>&1 || true
  fi
  line="   not yet: ${out:0:200}"
  [ "$line" = "$last" ] || echo "$line"
  last=$line
  if [ "$(left)" -le 0 ]; then
    echo "the cluster did not serve within $UP_TIMEOUT s" >&2
    exit 1
  fi
  sleep 1
done
req -X DELETE "$url/collections/$probe" >/dev/null
echo "   collection created, written and deleted after $(elapsed) s"
echo "cluster up in $(elapsed) s"
echo "REST $url"
