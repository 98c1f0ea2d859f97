#!/usr/bin/env bash
# The test command from the README: builds what the tests need, then runs every test.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace --locked "$@"
