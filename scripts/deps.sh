#!/usr/bin/env bash
# Installs the system packages the build needs and a fresh machine may lack, from Debian's
# archive. Today that is libclang, which the `rocksdb` crate's bindgen loads at build time.
# Idempotent and quick when everything is present; scripts/test.sh runs it first.
set -euo pipefail

have_libclang() {
    # bindgen looks for libclang.so / libclang-NN.so in the usual library directories.
    ldconfig -p 2>/dev/null | grep -q 'libclang\(-[0-9.]*\)\?\.so' \
        || compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null
}

if have_libclang; then
    echo "deps: libclang present"
    exit 0
fi

echo "deps: libclang missing (needed by the rocksdb crate's bindgen): installing libclang-dev"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "deps: not root and no sudo: install libclang-dev yourself (apt-get install libclang-dev)" >&2
        exit 1
    }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q || echo "deps: apt-get update failed; trying the cached package lists" >&2
$sudo apt-get install -y -q --no-install-recommends libclang-dev
have_libclang || { echo "deps: libclang-dev installed but libclang not found" >&2; exit 1; }
echo "deps: libclang installed"
