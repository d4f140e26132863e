#!/usr/bin/env bash
# fake-gcs-server (GCS emulator) for the object backend's GCS tests: built with `go install`
# from the Go module proxy, HTTP on 127.0.0.1:4443, filesystem backend, bucket `pinvault`.
# Sourced by testenv/pvenv; see testenv/services/gcs/NOTES.md for which object_store GCS
# operations work against it.

# Newest release the Go module proxy serves (2026-08-24); builds with Go 1.26.
GCS_VERSION="v1.56.1"
# shellcheck disable=SC2034 # read by testenv/pvenv
GCS_START_TIMEOUT=30
GCS_HOST="127.0.0.1"
GCS_PORT=4443
GCS_BUCKET="pinvault"

gcs_endpoint() { echo "http://$GCS_HOST:$GCS_PORT"; }
gcs_bin() { echo "$PVENV_CACHE/gcs/$GCS_VERSION/bin/fake-gcs-server"; }
# The service account file object_store reads (see gcs_write_service_account).
gcs_service_account() { echo "$PVENV_STATE/gcs/service-account.json"; }

gcs_install() {
    local dir="$PVENV_CACHE/gcs/$GCS_VERSION" work="$PVENV_CACHE/gcs/go"
    if [[ -x $dir/bin/fake-gcs-server && $(cat "$dir/stamp" 2>/dev/null) == "$GCS_VERSION" ]]; then
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir/bin" "$work"
    # Module and build caches live under the service's cache dir (self-contained, writable so
    # rm -rf works) and are dropped once the binary is built.
    env GOBIN="$dir/bin" GOPATH="$work/path" GOMODCACHE="$work/mod" GOCACHE="$work/build" \
        GOFLAGS="-mod=mod -modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
        go install "github.com/fsouza/fake-gcs-server@$GCS_VERSION"
    echo "$GCS_VERSION" >"$dir/stamp"
    rm -rf "$work"
}

# object_store's GoogleCloudStorageBuilder::with_service_account_path reads this: with
# `disable_oauth` it sends no token (the emulator wants none), `gcs_base_url` points it at the
# emulator instead of storage.googleapis.com. The key fields must be present but may be empty.
gcs_write_service_account() {
    cat >"$(gcs_service_account)" <<EOF
{
  "gcs_base_url": "$(gcs_endpoint)",
  "disable_oauth": true,
  "client_email": "",
  "private_key": "",
  "private_key_id": ""
}
EOF
}

gcs_start() {
    rm -rf "$PVENV_STATE/gcs/data"
    mkdir -p "$PVENV_STATE/gcs/data"
    gcs_write_service_account
    # -public-host must be the host:port clients use: the emulator routes path-style XML API
    # requests (/BUCKET/OBJECT, what object_store sends) only for that Host header.
    pv_spawn gcs "$(gcs_bin)" -scheme http -host "$GCS_HOST" -port "$GCS_PORT" \
        -backend filesystem -filesystem-root "$PVENV_STATE/gcs/data" \
        -public-host "$GCS_HOST:$GCS_PORT" -external-url "$(gcs_endpoint)" -log-level warn
}

gcs_health() {
    curl -fsS --max-time 2 -o /dev/null "$(gcs_endpoint)/storage/v1/b"
}

# gcs_curl CURL_ARGS...: one request to the emulator; prints the HTTP status (body kept in
# $PVENV_STATE/gcs/last-response).
gcs_curl() {
    curl -sS --max-time 10 -o "$PVENV_STATE/gcs/last-response" -w '%{http_code}' "$@"
}

gcs_smoke() {
    local ep code key first second gen
    ep=$(gcs_endpoint)
    code=$(gcs_curl -X POST -H 'Content-Type: application/json' \
        --data "{\"name\":\"$GCS_BUCKET\"}" "$ep/storage/v1/b")
    # 409 when `up` keeps a running server whose bucket exists.
    [[ $code == 200 || $code == 409 ]] || pv_die "gcs: create bucket $GCS_BUCKET: HTTP $code"
    key="smoke/if-generation-match-$$-$RANDOM"
    first=$(gcs_curl -X POST --data-binary 'first' -H 'Content-Type: text/plain' \
        "$ep/upload/storage/v1/b/$GCS_BUCKET/o?uploadType=media&name=$key&ifGenerationMatch=0")
    gen=$(sed -n 's/.*"generation": *"\{0,1\}\([0-9]*\).*/\1/p' "$PVENV_STATE/gcs/last-response" | head -n 1)
    second=$(gcs_curl -X POST --data-binary 'second' -H 'Content-Type: text/plain' \
        "$ep/upload/storage/v1/b/$GCS_BUCKET/o?uploadType=media&name=$key&ifGenerationMatch=0")
    gcs_curl -X DELETE "$ep/storage/v1/b/$GCS_BUCKET/o/${key//\//%2F}" >/dev/null
    if [[ $first != 200 || $second != 412 ]]; then
        pv_die "gcs smoke: JSON upload with ifGenerationMatch=0 twice gave $first then $second (want 200 then 412)"
    fi
    echo "gcs smoke: JSON upload $GCS_BUCKET/$key with ifGenerationMatch=0 -> $first (generation $gen), again -> $second Precondition Failed"
}

gcs_env() {
    cat <<EOF
export PINVAULT_GCS_ENDPOINT=$(gcs_endpoint)
export PINVAULT_GCS_BUCKET=$GCS_BUCKET
export PINVAULT_GCS_SERVICE_ACCOUNT=$(gcs_service_account)
EOF
}
