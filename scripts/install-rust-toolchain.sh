#!/usr/bin/env bash
# Install the toolchain that builds wasmjob's Rust extensions offline, from
# Debian's packages: rustc and cargo, the wasm32 standard library, the linker
# it uses (rust-lld is lld), and the packaged crates the Rust SDK depends on.
# Idempotent: does nothing (and no apt-get update) when all are installed.
# Used by .ci/run; worker/builder_rust.py finds what this installs.
set -euo pipefail

PACKAGES=(
    rustc
    cargo
    libstd-rust-dev-wasm32
    librust-serde-dev
    librust-serde-derive-dev
    librust-serde-json-dev
    librust-rmp-serde-dev
    librust-syn-dev
    librust-quote-dev
    librust-proc-macro2-dev
)

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-rust-toolchain: no apt-get here; install Rust with rustup and run" >&2
    echo "  rustup target add wasm32-unknown-unknown" >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# rust-lld (shipped with rustc) is a link to lld-<llvm version>, which
# libstd-rust-dev-wasm32 only recommends.
lld_ok() {
    [ -e /usr/bin/rust-lld ] && [ -x "$(readlink -f /usr/bin/rust-lld)" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ] || ! lld_ok; then
    "${SUDO[@]}" apt-get update -qq
    if [ ${#missing[@]} -gt 0 ]; then
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    if ! lld_ok; then
        lld=$(apt-cache depends libstd-rust-dev-wasm32 | sed -n 's/.*Recommends: \(lld-[0-9][0-9]*\).*/\1/p' | head -n 1)
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${lld:-lld}"
    fi
fi

lld_ok || { echo "install-rust-toolchain: rust-lld still points at a missing lld" >&2; exit 1; }
echo "install-rust-toolchain: $(/usr/bin/rustc --version), $(/usr/bin/cargo --version), wasm32 std and SDK crates installed"
