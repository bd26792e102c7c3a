#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests, Python tests.
# Run scripts/setup.sh first. Runs as root: the exec-layer tests attach loop devices
# and mount filesystems (and check that nothing is left behind).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --check
step "cargo clippy -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings
step "cargo test"
cargo test --locked
step "pytest"
.venv/bin/python -m pytest -q tests
