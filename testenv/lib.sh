#!/usr/bin/env bash
# Shared helpers of testenv/pvenv and its service files: paths, logging, processes, waits.

PVENV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PVENV_CACHE="${PINVAULT_TESTENV_CACHE:-$HOME/.cache/pinvault/testenv}"
PVENV_STATE="${PINVAULT_TESTENV_STATE:-$PVENV_ROOT/target/testenv}"
export PVENV_ROOT PVENV_CACHE PVENV_STATE

pv_log() { printf '[pvenv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pv_die() { pv_log "error: $*"; exit 1; }

# pv_spawn SERVICE CMD...: starts CMD in its own process group (setsid), output to the
# service's log, pid in its pid file.
pv_spawn() {
    local s=$1; shift
    mkdir -p "$PVENV_STATE/$s"
    setsid "$@" >>"$PVENV_STATE/$s/log" 2>&1 </dev/null &
    echo $! >"$PVENV_STATE/$s/pid"
}

# pv_running SERVICE: its pid file names a live process.
pv_running() {
    local pidfile="$PVENV_STATE/$1/pid"
    [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# pv_wait_healthy SERVICE HEALTH_FN TIMEOUT: polls HEALTH_FN every second until it succeeds,
# the process dies, or TIMEOUT seconds pass.
pv_wait_healthy() {
    local s=$1 fn=$2 timeout=$3 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        if "$fn" >/dev/null 2>&1; then return 0; fi
        pv_running "$s" || { pv_log "$s: process exited while starting"; return 1; }
        sleep 1
    done
    return 1
}

# pv_wait_port HOST PORT TIMEOUT: waits until a TCP connect succeeds.
pv_wait_port() {
    local host=$1 port=$2 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
        sleep 1
    done
    return 1
}

# pv_port_open HOST PORT: one TCP connect attempt.
pv_port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# pv_stop_service SERVICE: TERM the whole process group, KILL after 20 s, remove the pid file.
# Services with several processes (a 3-node cluster) define NAME_stop and use it themselves.
pv_stop_service() {
    local s=$1 f
    f=$(fn_name "$s")
    if declare -F "${f}_stop" >/dev/null; then
        "${f}_stop"
    else
        pv_kill_pidfile "$PVENV_STATE/$s/pid"
    fi
}

# pv_kill_pidfile FILE: stops the process group led by the pid in FILE.
pv_kill_pidfile() {
    local pidfile=$1 pid i
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# pv_rss_mib SERVICE: resident memory of the service's process group, in MiB.
pv_rss_mib() {
    local pid
    pid=$(cat "$PVENV_STATE/$1/pid" 2>/dev/null) || { echo 0; return; }
    ps -o rss= -g "$pid" 2>/dev/null | awk '{ s += $1 } END { printf "%d", s / 1024 }'
}

fn_name() { echo "${1//-/_}"; }
