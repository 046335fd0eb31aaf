#!/usr/bin/env bash
# The main job on a fresh machine: Tandem's prefill-decode deployment on this host, serving the
# default model over the OpenAI API on the router's port $ROUTER_PORT (default 8000). The
# router pairs one prefill and one decode api-server, each under its own multi-api-server
# (health checks, restarts, leaving the router before a restart); they register with the
# router by themselves. Examples/pd-single-host/ describes it. Stop with Ctrl-C (graceful).
# With TANDEM_BIN set to a folder of built binaries, the install and build steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${TANDEM_BIN:-} ]]; then
    scripts/install-deps.sh
    swift build -c release --product router
    swift build -c release --product multi-api-server
    swift build -c release --product api-server
    TANDEM_BIN=$(swift build -c release --show-bin-path)
    export TANDEM_BIN
fi
exec Examples/pd-single-host/run.sh "$@"
