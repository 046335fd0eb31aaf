#!/usr/bin/env bash
# The test command: installs what is needed, builds optimized (numeric code is only
# meaningful in release builds) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release
swift test -c release
