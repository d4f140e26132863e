#!/usr/bin/env bash
# Azurite (the Azure Blob emulator) for the object backend's Azure tests: installed from npm with
# `npm ci` from the package.json + package-lock.json next to this file, blob service only on
# 127.0.0.1:10000, the well-known dev account, container `pinvault`. Sourced by testenv/pvenv;
# see testenv/services/azurite/NOTES.md.

# 3.35.0 is the last release whose engines allow Node 20 (3.36.0 wants >=21, 3.37.0 >=22).
# The version is also pinned in azurite/package.json; the lock file pins every dependency.
AZURITE_VERSION="3.35.0"
AZURITE_START_TIMEOUT=30
AZURITE_HOST="127.0.0.1"
AZURITE_PORT=10000
# The emulator's public, documented development account: a fixed test credential, loopback only.
AZURITE_ACCOUNT="devstoreaccount1"
AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_CONTAINER="pinvault"

azurite_files() { echo "$PVENV_ROOT/testenv/services/azurite"; }
azurite_dir() { echo "$PVENV_CACHE/azurite/$AZURITE_VERSION"; }
# azurite_endpoint [PORT]: the account's URL on the instance at PORT (default: the first).
azurite_endpoint() { echo "http://$AZURITE_HOST:${1:-$AZURITE_PORT}/$AZURITE_ACCOUNT"; }

# The stamp names the version and the lock file's hash, so a changed lock file reinstalls.
azurite_stamp() {
    echo "$AZURITE_VERSION $(sha256sum "$(azurite_files)/package-lock.json" | cut -d' ' -f1)"
}

azurite_install() {
    local dir files
    dir=$(azurite_dir)
    files=$(azurite_files)
    if [[ -x $dir/node_modules/.bin/azurite-blob && $(cat "$dir/stamp" 2>/dev/null) == "$(azurite_stamp)" ]]; then
        return 0
    fi
    command -v node >/dev/null || pv_die "azurite: node is not installed (Azurite $AZURITE_VERSION needs Node >= 10, <= 20 tested)"
    command -v npm >/dev/null || pv_die "azurite: npm is not installed"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$files/package.json" "$files/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
    [[ $("$dir/node_modules/.bin/azurite-blob" --version) == "$AZURITE_VERSION" ]] ||
        pv_die "azurite: installed azurite-blob does not report version $AZURITE_VERSION"
    azurite_stamp >"$dir/stamp"
}

azurite_start() { azurite_start_instance azurite "$AZURITE_PORT"; }

# azurite_start_instance SERVICE PORT: one Azurite process, its data under SERVICE's state.
azurite_start_instance() {
    local service=$1 port=$2
    local data="$PVENV_STATE/$service/data"
    # pvenv stopped our own server already: a listener now is someone else's, and the health
    # probe would take it for ours.
    if pv_port_open "$AZURITE_HOST" "$port"; then
        pv_die "$service: $AZURITE_HOST:$port is already in use by a process pvenv did not start (state: $PVENV_STATE)"
    fi
    rm -rf "$data"
    mkdir -p "$data"
    # AZURITE_ACCOUNTS names the dev account explicitly (it is also Azurite's default).
    # --skipApiVersionCheck: SDKs newer than this Azurite send x-ms-version values it does not
    # know yet. --loose: ignore the headers Azurite does not implement instead of failing.
    # --disableProductStyleUrl: the account is always the first path segment (path-style URLs).
    # --disableTelemetry: the machine reaches no telemetry endpoint; don't try.
    AZURITE_ACCOUNTS="$AZURITE_ACCOUNT:$AZURITE_KEY" \
        pv_spawn "$service" "$(azurite_dir)/node_modules/.bin/azurite-blob" \
        --blobHost "$AZURITE_HOST" --blobPort "$port" \
        --location "$data" --disableProductStyleUrl \
        --skipApiVersionCheck --loose --disableTelemetry
}

# Any HTTP answer means the blob service listens (an unsigned request gets an error status).
azurite_health() {
    local code
    code=$(curl -sS --max-time 2 -o /dev/null -w '%{http_code}' "$(azurite_endpoint "${1:-}")?comp=list") || return 1
    [[ $code != 000 ]]
}

# azurite_blob [--port PORT] ARGS...: the Python client against one instance.
azurite_blob() {
    local port=""
    if [[ ${1:-} == --port ]]; then
        port=$2
        shift 2
    fi
    AZBLOB_ENDPOINT="$(azurite_endpoint "$port")" AZBLOB_ACCOUNT="$AZURITE_ACCOUNT" AZBLOB_KEY="$AZURITE_KEY" \
        AZBLOB_CONTAINER="$AZURITE_CONTAINER" python3 "$(azurite_files)/azblob.py" "$@"
}

azurite_smoke() {
    azurite_blob smoke
}

azurite_env() {
    cat <<EOF
export PINVAULT_AZURE_ENDPOINT=$(azurite_endpoint)
export PINVAULT_AZURE_ACCOUNT=$AZURITE_ACCOUNT
export PINVAULT_AZURE_ACCESS_KEY=$AZURITE_KEY
export PINVAULT_AZURE_CONTAINER=$AZURITE_CONTAINER
EOF
}
