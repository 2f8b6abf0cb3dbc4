#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with Rust: installs what the tests need
# (redis-server), checks formatting and lints, builds every binary (the end-to-end tests run
# them as processes), then runs every test with cargo-nextest (cargo test when it is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_pkg redis-server redis-server redis-tools

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> build"
cargo build --workspace --all-targets --locked
echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
