#!/usr/bin/env bash
# The test command: installs what is needed, builds optimized (numeric code is only
# meaningful in release builds) and runs every test. The tests are built in the same step as
# the executables they start, and run without a second build (`swift test -c release` alone
# would compile every module again for testing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --build-tests
swift test -c release --skip-build
