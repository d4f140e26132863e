#!/usr/bin/env bash
# MinIO (S3) for the object backend's S3 tests: built from source with `go install` from the Go
# module proxy (no other download reaches these machines), one node on 127.0.0.1:9000, bucket
# `pinvault`. Sourced by testenv/pvenv; see testenv/services/minio/NOTES.md.

# The proxy serves no RELEASE.* tag of github.com/minio/minio (they are not semver; it answers
# 403 to them): only this pseudo-version, the last commit of the repository (2026-02-12).
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
# shellcheck disable=SC2034 # read by testenv/pvenv
MINIO_START_TIMEOUT=60
MINIO_ADDRESS="127.0.0.1:9000"
MINIO_CONSOLE_ADDRESS="127.0.0.1:9001"
MINIO_USER="pinvault"
MINIO_PASSWORD="pinvault-secret"
MINIO_BUCKET="pinvault"
MINIO_REGION="us-east-1"

minio_bin() { echo "$PVENV_CACHE/minio/$MINIO_VERSION/bin/minio"; }

minio_install() {
    local dir="$PVENV_CACHE/minio/$MINIO_VERSION" work="$PVENV_CACHE/minio/go"
    if [[ -x $dir/bin/minio && $(cat "$dir/stamp" 2>/dev/null) == "$MINIO_VERSION" ]]; then
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir/bin" "$work"
    # Module and build caches live under the service's cache dir (self-contained, and writable
    # so the dir can be removed with rm -rf); they are dropped once the binary is built.
    env GOBIN="$dir/bin" GOPATH="$work/path" GOMODCACHE="$work/mod" GOCACHE="$work/build" \
        GOFLAGS="-mod=mod -modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
        go install "github.com/minio/minio@$MINIO_VERSION"
    "$dir/bin/minio" --version >/dev/null
    echo "$MINIO_VERSION" >"$dir/stamp"
    rm -rf "$work"
}

minio_start() {
    rm -rf "$PVENV_STATE/minio/data"
    mkdir -p "$PVENV_STATE/minio/data"
    MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
        MINIO_BROWSER=off MINIO_UPDATE=off \
        pv_spawn minio "$(minio_bin)" server "$PVENV_STATE/minio/data" \
        --address "$MINIO_ADDRESS" --console-address "$MINIO_CONSOLE_ADDRESS" --quiet
}

minio_health() {
    curl -fsS --max-time 2 -o /dev/null "http://$MINIO_ADDRESS/minio/health/ready"
}

# minio_s3 METHOD URL BODY CURL_ARGS...: one S3 request signed with SigV4 by curl; prints the
# HTTP status. curl 7.88 signs no payload hash of its own: S3 needs x-amz-content-sha256, which
# curl then signs and uses as the payload hash.
minio_s3() {
    local method=$1 url=$2 body=$3 sha
    shift 3
    sha=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
    local args=(-X "$method" -H "x-amz-content-sha256: $sha")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/octet-stream' --data-binary "$body")
    curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
        --aws-sigv4 "aws:amz:$MINIO_REGION:s3" --user "$MINIO_USER:$MINIO_PASSWORD" \
        "${args[@]}" "$@" "$url"
}

minio_smoke() {
    local base="http://$MINIO_ADDRESS/$MINIO_BUCKET" code key first second
    code=$(minio_s3 PUT "$base" '')
    # 409 BucketAlreadyOwnedByYou when `up` keeps a running server.
    [[ $code == 200 || $code == 409 ]] || pv_die "minio: create bucket $MINIO_BUCKET: HTTP $code"
    key="smoke/if-none-match-$$-$RANDOM"
    first=$(minio_s3 PUT "$base/$key" 'first' -H 'If-None-Match: *')
    second=$(minio_s3 PUT "$base/$key" 'second' -H 'If-None-Match: *')
    minio_s3 DELETE "$base/$key" '' >/dev/null
    if [[ $first != 200 || $second != 412 ]]; then
        pv_die "minio smoke: PUT If-None-Match:* twice gave $first then $second (want 200 then 412)"
    fi
    echo "minio smoke: PUT $MINIO_BUCKET/$key with If-None-Match: * -> $first, again -> $second Precondition Failed"
}

minio_env() {
    cat <<EOF
export PINVAULT_S3_ENDPOINT=http://$MINIO_ADDRESS
export PINVAULT_S3_BUCKET=$MINIO_BUCKET
export PINVAULT_S3_ACCESS_KEY_ID=$MINIO_USER
export PINVAULT_S3_SECRET_ACCESS_KEY=$MINIO_PASSWORD
export PINVAULT_S3_REGION=$MINIO_REGION
EOF
}
