#!/usr/bin/env bash
# Engine speed side by side with llama.cpp (through PyPI llama-cpp-python) on the same GGUF
# file, in one run: prefill of a 512-token prompt, generation of 128 tokens by one sequence,
# and generation throughput with 8 and 32 sequences decoding together.
#
#   scripts/bench-engine.sh [--model PATH] [--threads N] [--repetitions R] [--gen-tokens N]
#
# llama.cpp's batched figures use its low-level batch API (llama_batch with one sequence id
# per token, as llama-batched-bench does), greedy argmax on each sequence's logits like
# tandem's bench. Prints a Markdown table and writes the raw JSON lines to $OUT_DIR
# (default .build/bench-engine).
set -euo pipefail
cd "$(dirname "$0")/.."

model="" threads=2 repetitions=3 gen=128
while (($#)); do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --repetitions) repetitions="$2"; shift 2 ;;
        --gen-tokens) gen="$2"; shift 2 ;;
        *) echo "bench-engine: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n "$model" ]] || model="$(scripts/fetch-model.sh)"
out_dir="${OUT_DIR:-.build/bench-engine}"
mkdir -p "$out_dir"

# Install step: llama-cpp-python builds llama.cpp from source (several minutes, once).
python3 -c "import llama_cpp" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check llama-cpp-python numpy

swift build -c release --product tandem >&2
tandem=.build/release/tandem

run_tandem() { # name, args...
    local name="$1"; shift
    echo "tandem $name ..." >&2
    "$tandem" bench engine --model "$model" --threads "$threads" --repetitions "$repetitions" --json "$@" \
        | tee "$out_dir/tandem-$name.json"
}

run_llamacpp() { # name, prompt_tokens, gen_tokens, batch
    echo "llama.cpp $1 ..." >&2
    python3 - "$model" "$threads" "$repetitions" "$2" "$3" "$4" <<'PY' | tee "$out_dir/llamacpp-$1.json"
import ctypes, json, resource, statistics, sys, time
import numpy as np
import llama_cpp as L

path, threads, reps, n_prompt, n_gen, n_seq = sys.argv[1], *map(int, sys.argv[2:])
quiet = L.llama_log_callback(lambda level, text, user: None)  # kept alive: llama.cpp holds it
L.llama_log_set(quiet, ctypes.c_void_p())
L.llama_backend_init()
model = L.llama_model_load_from_file(path.encode(), L.llama_model_default_params())
vocab = L.llama_model_get_vocab(model)
n_vocab = L.llama_vocab_n_tokens(vocab)
cp = L.llama_context_default_params()
cp.n_ctx = max(n_prompt + 16, n_seq * (n_gen + 16), 256)
cp.n_batch = cp.n_ubatch = max(512, n_seq)
cp.n_seq_max = n_seq
cp.n_threads = cp.n_threads_batch = threads
ctx = L.llama_init_from_model(model, cp)
batch = L.llama_batch_init(cp.n_batch, 0, n_seq)

def clear():
    L.llama_memory_clear(L.llama_get_memory(ctx), True)

def decode(entries):  # (token, position, sequence, wants logits)
    batch.n_tokens = len(entries)
    for i, (t, p, s, want) in enumerate(entries):
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = t, p, 1, want
        batch.seq_id[i][0] = s
    if L.llama_decode(ctx, batch) != 0:
        sys.exit("llama_decode failed")

def argmax(i):
    return int(np.argmax(np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(n_vocab,))))

def prefill():
    clear()
    tokens = [(i * 2654435761 + 7) % n_vocab for i in range(n_prompt)]
    start = time.perf_counter()
    decode([(t, p, 0, p == n_prompt - 1) for p, t in enumerate(tokens)])
    return n_prompt / (time.perf_counter() - start)

def generate():
    clear()
    nxt = [(s * 2654435761 + 11) % n_vocab for s in range(n_seq)]
    start = time.perf_counter()
    for step in range(n_gen):
        decode([(nxt[s], step, s, True) for s in range(n_seq)])
        nxt = [argmax(s) for s in range(n_seq)]
    return n_gen * n_seq / (time.perf_counter() - start)

# Warm-up, as tandem's bench does.
n_prompt_saved, n_gen_saved = n_prompt, n_gen
n_gen = min(n_gen, 2); generate() if n_gen else None; n_gen = n_gen_saved
pp = [prefill() for _ in range(reps)] if n_prompt else []
tg = [generate() for _ in range(reps)] if n_gen else []
mean = lambda v: statistics.mean(v) if v else 0.0
dev = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
print(json.dumps({
    "prefill_tokens_per_s": round(mean(pp), 2), "prefill_tokens_per_s_stddev": round(dev(pp), 2),
    "generation_tokens_per_s": round(mean(tg), 2), "generation_tokens_per_s_stddev": round(dev(tg), 2),
    "prompt_tokens": n_prompt, "gen_tokens": n_gen, "batch": n_seq, "threads": threads,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "llama_cpp_python": L.__version__,
}))
PY
}

run_tandem pp512-tg --prompt-tokens 512 --gen-tokens "$gen" --batch 1
run_llamacpp pp512-tg 512 "$gen" 1
for b in 8 32; do
    run_tandem "tg-b$b" --prompt-tokens 0 --gen-tokens "$gen" --batch "$b"
    run_llamacpp "tg-b$b" 0 "$gen" "$b"
done

python3 - "$out_dir" "$threads" "$gen" <<'PY'
import json, sys
d, threads, gen = sys.argv[1], sys.argv[2], sys.argv[3]
load = lambda who, name: json.load(open(f"{d}/{who}-{name}.json"))
rows = [("pp512", "pp512-tg", "prefill_tokens_per_s"),
        (f"tg{gen}, 1 sequence", "pp512-tg", "generation_tokens_per_s"),
        (f"tg{gen}, 8 sequences", "tg-b8", "generation_tokens_per_s"),
        (f"tg{gen}, 32 sequences", "tg-b32", "generation_tokens_per_s")]
print(f"| test ({threads} threads) | tandem tok/s | llama.cpp tok/s | ratio |")
print("| --- | ---: | ---: | ---: |")
for label, name, key in rows:
    t, l = load("tandem", name), load("llamacpp", name)
    tv, lv = t[key], l[key]
    print(f"| {label} | {tv:.1f} ± {t[key + '_stddev']:.1f} | {lv:.1f} ± {l[key + '_stddev']:.1f} | {tv / lv:.2f} |")
for name in ["pp512-tg", "tg-b32"]:
    t, l = load("tandem", name), load("llamacpp", name)
    print(f"\npeak RSS ({name}): tandem {t.get('peak_rss_bytes', 0) / 2**20:.0f} MiB "
          f"(file-backed {t.get('rss_file_bytes', 0) / 2**20:.0f} MiB, anonymous {t.get('rss_anon_bytes', 0) / 2**20:.0f} MiB), "
          f"llama.cpp process {l['peak_rss_bytes'] / 2**20:.0f} MiB")
PY
