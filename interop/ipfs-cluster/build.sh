#!/usr/bin/env bash
# Builds pvcluster (this directory's Go module: ipfs-cluster v1.1.6's own code as the oracle of
# pinvault's interop tests) and prints the binary's path. The binary lives in the per-machine
# cache beside the Rust target dir, and Go's build cache (GOCACHE) and module cache are per
# machine too, so only the first build on a machine compiles ipfs-cluster and its ~1,400
# modules (README: how long that takes); later builds relink in about a second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
out=${PINVAULT_PVCLUSTER:-${HOME:-/root}/.cache/pinvault/interop/pvcluster}
mkdir -p "$(dirname "$out")"
# go.sum pins every module; -mod=readonly refuses to change go.mod/go.sum behind our back.
GOFLAGS=-mod=readonly go build -o "$out" . >&2
echo "$out"
