# Sourced by the test scripts that need a real local cluster on loopback
# (gateway/tests/qdrant_client_smoke.sh, gateway/tests/dashboard/check.sh):
# 1 meta-service, 3 storage nodes and 1 gateway as processes, certificates
# of a fresh CA, everything under $WORK and stopped on exit.
#
# The caller sets BIN (the binaries' folder), BASE (the first port),
# WORK (a scratch folder), REST and META (as below), and may set
# META_ARGS (an array of extra meta-service flags) and GATEWAY_API_KEY.
# Defines: pids (every process), node_pid[i] (storage node i),
# start_loopback_cluster, wait_active_nodes N [curl header args...].

pids=()
declare -A node_pid
stop_loopback_cluster() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap stop_loopback_cluster INT TERM EXIT

start_loopback_cluster() {
  "$BIN/certs" init --dir "$WORK/certs" >/dev/null
  for name in storage-1 storage-2 storage-3 gateway; do
    "$BIN/certs" issue --dir "$WORK/certs" --name "$name" --ip 127.0.0.1 --dns localhost >/dev/null
  done
  "$BIN/meta-service" --id 1 --listen "$META" --data-dir "$WORK/meta-1" --bootstrap \
    ${META_ARGS[@]+"${META_ARGS[@]}"} >>"$WORK/meta-1.log" 2>&1 &
  pids+=($!)
  for i in 1 2 3; do
    "$BIN/storage-node" --id "$i" --data-dir "$WORK/storage-$i" \
      --rpc-listen "127.0.0.1:$((BASE + 10 + i))" --http-listen "127.0.0.1:$((BASE + 20 + i))" \
      --gossip-listen "127.0.0.1:$((BASE + 30 + i))" --seeds "127.0.0.1:$((BASE + 31))" \
      --meta "$META" --certs-dir "$WORK/certs" >>"$WORK/storage-$i.log" 2>&1 &
    pids+=($!)
    node_pid[$i]=$!
  done
  env ${GATEWAY_API_KEY:+GATEWAY_API_KEY=$GATEWAY_API_KEY} \
    "$BIN/gateway" --rest-port "$REST" --listen-host 127.0.0.1 --meta "$META" \
    --certs-dir "$WORK/certs" --cert-name gateway >>"$WORK/gateway.log" 2>&1 &
  pids+=($!)
}

# Waits (30 s) until the gateway counts N active storage nodes; fails if a
# cluster process exits meanwhile (a port taken by another cluster must not
# let the tests run against whatever else answers on these ports).
wait_active_nodes() {
  local want=$1 n
  shift
  for _ in $(seq 1 150); do
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || { echo "a cluster process exited; logs:"; tail -n 5 "$WORK"/*.log; return 1; }
    done
    n=$(curl -fsS "$@" "http://127.0.0.1:$REST/api/cluster/metrics" 2>/dev/null \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["active_nodes"])' 2>/dev/null || true)
    [ "$n" = "$want" ] && return 0
    sleep 0.2
  done
  echo "cluster did not come up; logs:"; tail -n 20 "$WORK"/*.log
  return 1
}
