#!/usr/bin/env bash
# Single-sequence decode (tg128), one thread, tandem's AVX2 path against llama.cpp's AVX2 build,
# alternating in pairs on the same model files: the default model (Q4_1) and its Q4_K_M
# requantization. The quick check of ISSUE 10's open goal, without bench-kernels.sh's other rows.
#
#   scripts/bench-decode-avx2.sh [--pairs N] [--work DIR] [--tandem BIN]...
#
# DIR is scripts/bench-kernels.sh's work folder (its llama-avx2 build and Q4_K_M file; run that
# script once first). Each --tandem BIN adds a tandem binary (default .build/release/tandem), so
# two builds can be compared in the same run. Prints each pair and the median ratio per model.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=3 work="$HOME/.cache/tandem/bench-kernels" bins=()
while (($#)); do
    case "$1" in
        --pairs) pairs="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --tandem) bins+=("$2"); shift 2 ;;
        *) echo "bench-decode-avx2: unknown argument $1" >&2; exit 2 ;;
    esac
done
((${#bins[@]})) || bins=(.build/release/tandem)
model="$(scripts/fetch-model.sh)"
q4km="$work/models/$(basename "$model" .Q4_1.gguf).Q4_K_M.gguf"
llama="$work/llama-avx2/bin/llama-bench"
[[ -x "$llama" && -f "$q4km" ]] || { echo "bench-decode-avx2: run scripts/bench-kernels.sh --work $work first" >&2; exit 1; }
out=$(mktemp)
for ((p = 1; p <= pairs; p++)); do
    for m in "$model" "$q4km"; do
        tag=$(basename "$m" .gguf)
        for b in "${bins[@]}"; do
            t=$("$b" bench engine --model "$m" --cpu-kernels avx2 --threads 1 --repetitions 1 \
                --prompt-tokens 0 --gen-tokens 128 --batch 1 --json |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["generation_tokens_per_s"])')
            echo "$p $tag tandem:$b $t" | tee -a "$out" >&2
        done
        l=$("$llama" -m "$m" -t 1 -r 1 -p 0 -n 128 -o json 2>/dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])')
        echo "$p $tag llama-avx2 $l" | tee -a "$out" >&2
    done
done
python3 - "$out" <<'PY'
import statistics, sys, collections
rows = [l.split() for l in open(sys.argv[1])]
by = collections.defaultdict(dict)
for p, tag, who, v in rows: by[(tag, p)][who] = float(v)
whos = sorted({w for _, _, w, _ in rows if w != "llama-avx2"})
print("| model | pair | " + " | ".join(f"{w} tok/s | ratio" for w in whos) + " | llama.cpp avx2 tok/s |")
print("|---|---:|" + "---:|---:|" * len(whos) + "---:|")
ratios = collections.defaultdict(list)
for (tag, p), d in sorted(by.items()):
    cells = []
    for w in whos:
        r = d[w] / d["llama-avx2"]; ratios[(tag, w)].append(r)
        cells.append(f"{d[w]:.1f} | {r:.2f}")
    print(f"| {tag} | {p} | " + " | ".join(cells) + f" | {d['llama-avx2']:.1f} |")
for (tag, w), rs in sorted(ratios.items()):
    print(f"median ratio {tag} {w}: {statistics.median(rs):.2f} (of {len(rs)} pairs)")
PY
rm -f "$out"
