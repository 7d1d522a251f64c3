#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh Debian/Ubuntu machine
# (scripts/deps.sh says what and why), then runs every test.
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh exec_pty`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --locked "$@"
