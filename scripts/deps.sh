#!/usr/bin/env bash
# Installs the system packages the build needs and a fresh machine may lack, from Debian's
# archive. Each need is decided by what the build really loads, never by a file that merely looks
# alike:
#
# - libclang, for the `rocksdb` crate's bindgen (clang-sys dlopens `libclang.so` /
#   `libclang-NN.so.N`, and bindgen needs clang's builtin headers such as `stddef.h`, which
#   Debian ships in libclang-common-NN-dev). Debian images often carry `libclang-cpp.so.NN`, the
#   C++ API of a different package, which bindgen cannot use; it must not count.
#
# The other build tools (cmake and a C/C++ compiler for aws-lc-sys and RocksDB, Go for the test
# services and the ipfs-cluster interop tool, Java, Node.js, Python) are checked by running them.
# Idempotent and quick when everything is present; scripts/test.sh runs it first.
set -euo pipefail

# True when clang-sys will find a usable libclang: the C API library itself (not libclang-cpp)
# and, on Debian, the libclang-dev package that brings the builtin headers with it.
have_libclang() {
    if [[ -n ${LIBCLANG_PATH:-} ]]; then
        compgen -G "$LIBCLANG_PATH/libclang.so*" >/dev/null \
            || compgen -G "$LIBCLANG_PATH/libclang-[0-9]*.so*" >/dev/null
        return
    fi
    if command -v dpkg-query >/dev/null 2>&1; then
        [[ $(dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null) == "install ok installed" ]]
        return
    fi
    local f
    for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
        /usr/lib/*/libclang.so* /usr/lib/*/libclang-[0-9]*.so* /usr/lib64/libclang.so*; do
        [[ -e $f ]] && return 0
    done
    return 1
}

# Fails the run when a tool the build or the test services run is missing.
need_tool() {
    local tool=$1 why=$2
    if ! "$tool" --version >/dev/null 2>&1 && ! "$tool" version >/dev/null 2>&1; then
        echo "deps: $tool is missing ($why); the machine image is expected to provide it" >&2
        exit 1
    fi
}

need_tool cmake "aws-lc-sys and RocksDB are built with it"
need_tool cc "C code of RocksDB, zstd, aws-lc"
need_tool c++ "RocksDB's C++"
need_tool go "MinIO, fake-gcs-server and the ipfs-cluster interop tool are built from the Go module proxy"
need_tool java "Cassandra"
need_tool node "Azurite"
need_tool python3 "the Cassandra probe and fixture scripts"

if have_libclang; then
    echo "deps: libclang-dev present (bindgen's libclang and builtin headers)"
    exit 0
fi

echo "deps: libclang-dev missing (the rocksdb crate's bindgen loads libclang.so): installing it"
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
have_libclang || { echo "deps: libclang-dev installed but libclang still not found" >&2; exit 1; }
echo "deps: libclang-dev installed"
