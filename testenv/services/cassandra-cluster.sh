#!/usr/bin/env bash
# A 3-node Cassandra 5.0 cluster on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (native port 19042,
# storage port 17000; no auth, no TLS) for the Scylla backend's failover tests. Optional: started
# only by `testenv/pvenv up cassandra-cluster`. Same install and helpers as the single node
# (testenv/services/cassandra.sh); it can run beside it. Nodes join one at a time. To stop, kill
# or restart one node during a test: $PINVAULT_CASSANDRA_CLUSTER_NODECTL (see
# testenv/services/cassandra-cluster/nodectl and testenv/services/cassandra/NOTES.md).

# The health probe after start is quick: start itself waits for each node in turn.
# shellcheck disable=SC2034 # read by testenv/pvenv
CASSANDRA_CLUSTER_START_TIMEOUT=60
# Per node, from spawn to its CQL answering.
CASSANDRA_CLUSTER_NODE_TIMEOUT=180
CASSANDRA_CLUSTER_NODES=3
CASSANDRA_CLUSTER_NATIVE_PORT=19042
CASSANDRA_CLUSTER_STORAGE_PORT=17000
CASSANDRA_CLUSTER_HEAP_MIN="256m"
CASSANDRA_CLUSTER_HEAP_MAX="768m"

cassandra_cluster_dir() { echo "$PVENV_STATE/cassandra-cluster"; }
cassandra_cluster_address() { echo "127.0.0.$1"; }

# Evenly spaced Murmur3 tokens (one per node), so that nodes join without bootstrap streaming.
cassandra_cluster_token() {
    case $1 in
        1) echo "-9223372036854775808" ;;
        2) echo "-3074457345618258603" ;;
        3) echo "3074457345618258602" ;;
        *) pv_die "cassandra-cluster: no node $1" ;;
    esac
}

cassandra_cluster_contact_points() {
    local n points=()
    for n in $(seq 1 "$CASSANDRA_CLUSTER_NODES"); do
        points+=("$(cassandra_cluster_address "$n"):$CASSANDRA_CLUSTER_NATIVE_PORT")
    done
    local IFS=,
    echo "${points[*]}"
}

cassandra_cluster_install() {
    cassandra_install
}

# cassandra_cluster_progress MSG: one line in the service log (node logs are nodeN.log).
cassandra_cluster_progress() {
    printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >>"$(cassandra_cluster_dir)/log"
}

# cassandra_cluster_node_spawn N: starts node N on its existing data (a restart keeps it), in its
# own process group; pid in nodeN.pid (node 1's also in `pid`, which pvenv watches).
cassandra_cluster_node_spawn() {
    local n=$1 base dir cmd pid
    base=$(cassandra_cluster_dir)
    dir="$base/node$n"
    [[ -f $dir/cassandra.yaml ]] || pv_die "cassandra-cluster: node $n has no config (run: testenv/pvenv up cassandra-cluster)"
    if cassandra_cluster_node_running "$n"; then
        return 0
    fi
    mapfile -t cmd < <(cassandra_daemon_cmd "$dir" "$dir/cassandra.yaml" \
        "$CASSANDRA_CLUSTER_HEAP_MIN" "$CASSANDRA_CLUSTER_HEAP_MAX")
    setsid "${cmd[@]}" >>"$base/node$n.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$base/node$n.pid"
    [[ $n == 1 ]] && echo "$pid" >"$base/pid"
    cassandra_cluster_progress "node$n: started (pid $pid)"
}

cassandra_cluster_node_running() {
    local pidfile
    pidfile="$(cassandra_cluster_dir)/node$1.pid"
    [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# cassandra_cluster_node_health N [PEERS]: node N answers CQL and knows at least PEERS peers.
cassandra_cluster_node_health() {
    cassandra_cql 15 health --hosts "$(cassandra_cluster_address "$1"):$CASSANDRA_CLUSTER_NATIVE_PORT" \
        --peers "${2:-0}"
}

# cassandra_cluster_node_wait N [PEERS]: until node N answers CQL and knows PEERS peers (0 when
# omitted); its log tail on failure.
cassandra_cluster_node_wait() {
    local n=$1 peers=${2:-0} base deadline=$((SECONDS + CASSANDRA_CLUSTER_NODE_TIMEOUT)) started=$SECONDS
    base=$(cassandra_cluster_dir)
    while ((SECONDS < deadline)); do
        if cassandra_cluster_node_health "$n" "$peers" >/dev/null 2>&1; then
            cassandra_cluster_progress "node$n: CQL answers after $((SECONDS - started))s"
            return 0
        fi
        if ! cassandra_cluster_node_running "$n"; then
            pv_log "cassandra-cluster: node $n exited while starting; last lines of $base/node$n.log:"
            tail -n 40 "$base/node$n.log" >&2 || true
            return 1
        fi
        sleep 1
    done
    pv_log "cassandra-cluster: node $n not answering CQL after ${CASSANDRA_CLUSTER_NODE_TIMEOUT}s; last lines of $base/node$n.log:"
    tail -n 40 "$base/node$n.log" >&2 || true
    return 1
}

# cassandra_cluster_node_stop N [SIGNAL]: TERM (a clean shutdown; KILL after 20 s) or, with
# KILL, a crash of node N's process group. Its data stays for a restart.
cassandra_cluster_node_stop() {
    local n=$1 signal=${2:-TERM} base pid
    base=$(cassandra_cluster_dir)
    if [[ $signal == KILL && -f $base/node$n.pid ]]; then
        pid=$(cat "$base/node$n.pid")
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    pv_kill_pidfile "$base/node$n.pid"
    [[ $n == 1 ]] && rm -f "$base/pid"
    cassandra_cluster_progress "node$n: stopped ($signal)"
}

cassandra_cluster_start() {
    local base n dir address
    base=$(cassandra_cluster_dir)
    cassandra_cluster_stop
    rm -rf "$base"
    mkdir -p "$base"
    # The nodectl of this state and cache dir, for tests: kill/stop/start one node.
    cat >"$base/nodectl" <<EOF
#!/usr/bin/env bash
export PINVAULT_TESTENV_STATE='$PVENV_STATE' PINVAULT_TESTENV_CACHE='$PVENV_CACHE'
exec '$PVENV_ROOT/testenv/services/cassandra-cluster/nodectl' "\$@"
EOF
    chmod +x "$base/nodectl"
    for n in $(seq 1 "$CASSANDRA_CLUSTER_NODES"); do
        dir="$base/node$n"
        address=$(cassandra_cluster_address "$n")
        mkdir -p "$dir"
        cassandra_render_yaml "$dir/cassandra.yaml" CLUSTER_NAME=pinvault-test-cluster \
            INITIAL_TOKEN="$(cassandra_cluster_token "$n")" AUTO_BOOTSTRAP=false \
            ADDRESS="$address" STORAGE_PORT="$CASSANDRA_CLUSTER_STORAGE_PORT" \
            NATIVE_PORT="$CASSANDRA_CLUSTER_NATIVE_PORT" \
            SEEDS="$(cassandra_cluster_address 1):$CASSANDRA_CLUSTER_STORAGE_PORT" DIR="$dir"
    done
    # One at a time: the next node starts once this one answers CQL and knows the nodes before it.
    for n in $(seq 1 "$CASSANDRA_CLUSTER_NODES"); do
        cassandra_cluster_node_spawn "$n"
        pv_log "cassandra-cluster: node $n ($(cassandra_cluster_address "$n")) starting"
        if ! cassandra_cluster_node_wait "$n" $((n - 1)); then
            cassandra_cluster_stop
            return 1
        fi
    done
}

cassandra_cluster_stop() {
    local base n
    base=$(cassandra_cluster_dir)
    [[ -d $base ]] || return 0
    # All nodes at once: each clean shutdown takes a few seconds.
    for n in $(seq 1 "$CASSANDRA_CLUSTER_NODES"); do
        pv_kill_pidfile "$base/node$n.pid" &
    done
    wait
    rm -f "$base/pid"
}

# Every node answers CQL and knows all the others (gossip has spread).
cassandra_cluster_health() {
    cassandra_cql 20 health --hosts "$(cassandra_cluster_contact_points)" \
        --peers $((CASSANDRA_CLUSTER_NODES - 1))
}

cassandra_cluster_smoke() {
    cassandra_cql 120 cluster-smoke --hosts "$(cassandra_cluster_contact_points)"
}

cassandra_cluster_env() {
    cat <<EOF
export PINVAULT_CASSANDRA_CLUSTER_CONTACT_POINTS=$(cassandra_cluster_contact_points)
export PINVAULT_CASSANDRA_CLUSTER_NODECTL=$(cassandra_cluster_dir)/nodectl
EOF
}
