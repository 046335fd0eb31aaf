// Microbenchmark of tk_matmul at SmolLM2-135M's shapes (see BENCHMARKS-kernels.md).
// Usage: kernel_bench [--threads N] [--check] [--backend NAME] [--type NAME] [--m ROWS] [--model-step]
//   --check     compares the SIMD backend with the portable one on random weights first
//   --backend   times the named kernels (tk_pool_set_backend: portable, avx2, avx512, ...)
//               instead of the CPU's best
//   --m         times only that many activation rows (1, 8, 32 or 512)
//   --model-step  times all products of one SmolLM2-135M step (decode m = 1, 8, 32; prefill 512),
//               decode both one job per product and grouped (tk_matmul_many) as Transformer runs it
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk_matmul.h"

typedef struct {
    const char *name;
    int type;
    int block_size, block_bytes;
    int f16_offsets[2]; // byte offsets of fp16 scales in a block (-1: none)
} type_info;

static const type_info types[] = {
    {"f32", 0, 1, 4, {-1, -1}},      {"f16", 1, 1, 2, {-1, -1}},      {"bf16", 30, 1, 2, {-1, -1}},
    {"q4_0", 2, 32, 18, {0, -1}},    {"q4_1", 3, 32, 20, {0, 2}},     {"q5_0", 6, 32, 22, {0, -1}},
    {"q5_1", 7, 32, 24, {0, 2}},     {"q8_0", 8, 32, 34, {0, -1}},    {"q4_K", 12, 256, 144, {0, 2}},
    {"q5_K", 13, 256, 176, {0, 2}},  {"q6_K", 14, 256, 210, {208, -1}},
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float next_unit(void) { return (float)(next_u32() & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f; }

// fp16 bits of a small positive value (exponent 2^-8 .. 2^-5) or a signed one.
static uint16_t random_f16(int allow_negative) {
    uint16_t exp = (uint16_t)(7 + next_u32() % 4), mant = (uint16_t)(next_u32() & 0x3ff);
    uint16_t sign = allow_negative && (next_u32() & 1) ? 0x8000 : 0;
    return (uint16_t)(sign | (exp << 10) | mant);
}

static void *random_weights(const type_info *t, int64_t n, int64_t k) {
    size_t bytes = (size_t)(n * k / t->block_size * t->block_bytes);
    uint8_t *w = malloc(bytes);
    if (t->type == 0) {
        for (size_t i = 0; i < bytes / 4; i++) ((float *)w)[i] = next_unit() * 0.1f;
    } else if (t->block_size == 1) {
        for (size_t i = 0; i < bytes / 2; i++) {
            uint16_t h = random_f16(1);
            if (t->type == 30) { // bf16 with the same magnitude range
                float f = next_unit() * 0.1f;
                uint32_t bits;
                memcpy(&bits, &f, 4);
                h = (uint16_t)(bits >> 16);
            }
            memcpy(w + 2 * i, &h, 2);
        }
    } else {
        for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)next_u32();
        for (size_t b = 0; b < bytes / (size_t)t->block_bytes; b++)
            for (int f = 0; f < 2; f++)
                if (t->f16_offsets[f] >= 0) {
                    uint16_t h = random_f16(f == 1 && (t->type == 3 || t->type == 7));
                    memcpy(w + b * (size_t)t->block_bytes + t->f16_offsets[f], &h, 2);
                }
    }
    return w;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int check(tk_pool *pool) {
    const char *best = tk_cpu_backend();
    int failures = 0;
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        const type_info *t = &types[ti];
        int64_t n = 37, k = t->block_size == 256 ? 768 : 608, ms[] = {1, 3, 17, 64};
        void *w = random_weights(t, n, k);
        for (int mi = 0; mi < 4; mi++) {
            int64_t m = ms[mi];
            float *x = malloc(sizeof(float) * (size_t)(m * k)), *y0 = malloc(sizeof(float) * (size_t)(m * n)),
                  *y1 = malloc(sizeof(float) * (size_t)(m * n));
            for (int64_t i = 0; i < m * k; i++) x[i] = next_unit();
            tk_pool_set_backend(pool, "portable");
            tk_matmul(pool, t->type, w, n, k, x, m, y0);
            tk_pool_set_backend(pool, best);
            tk_matmul(pool, t->type, w, n, k, x, m, y1);
            double num = 0, den = 0;
            for (int64_t i = 0; i < m * n; i++) {
                num += (double)(y0[i] - y1[i]) * (y0[i] - y1[i]);
                den += (double)y0[i] * y0[i];
            }
            double rel = sqrt(num / (den > 0 ? den : 1));
            if (!(rel < 1e-5)) {
                printf("MISMATCH %s m=%lld: relative L2 %.3g (%s vs portable)\n", t->name, (long long)m, rel, best);
                failures++;
            }
            free(x);
            free(y0);
            free(y1);
        }
        free(w);
    }
    printf("check %s vs portable: %s\n", best, failures ? "FAILED" : "ok");
    return failures;
}

static void empty_job(void *ctx, int ith, int nth) {
    (void)ctx;
    (void)ith;
    (void)nth;
}

// Cost of one tk_pool_run round trip with an empty job (workers spinning between jobs).
static void dispatch_cost(tk_pool *pool) {
    int reps = 200000;
    for (int r = 0; r < 1000; r++) tk_pool_run(pool, empty_job, NULL);
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        for (int r = 0; r < reps; r++) tk_pool_run(pool, empty_job, NULL);
        double dt = (now_s() - t0) / reps;
        if (dt < best) best = dt;
    }
    printf("tk_pool_run dispatch (empty job, %d threads): %.2f us\n", tk_pool_threads(pool), best * 1e6);
}

typedef struct {
    const uint64_t *data;
    size_t words;
    uint64_t sums[16][8];
} read_job;

static void read_part(void *p, int ith, int nth) {
    read_job *job = p;
    size_t w0 = job->words * (size_t)ith / (size_t)nth, w1 = job->words * (size_t)(ith + 1) / (size_t)nth;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = w0; i + 4 <= w1; i += 4) {
        a += job->data[i];
        b += job->data[i + 1];
        c += job->data[i + 2];
        d += job->data[i + 3];
    }
    job->sums[ith][0] = a + b + c + d;
}

// The memory floor under the same conditions: reading a buffer as large as the model's weights.
static void read_bandwidth(tk_pool *pool) {
    size_t bytes = 92u << 20;
    read_job *job = calloc(1, sizeof(read_job));
    uint64_t *data = malloc(bytes);
    for (size_t i = 0; i < bytes / 8; i++) data[i] = i;
    job->data = data;
    job->words = bytes / 8;
    double best = 1e9;
    for (int rep = 0; rep < 8; rep++) {
        double t0 = now_s();
        tk_pool_run(pool, read_part, job);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    printf("memory read (92 MiB, %d threads): %.2f GB/s (%.3f ms)\n", tk_pool_threads(pool), (double)bytes / best * 1e-9, best * 1e3);
    free(data);
    free(job);
}

static const type_info *find_type(const char *name) {
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
        if (!strcmp(types[ti].name, name)) return &types[ti];
    return NULL;
}

// All matrix products of one SmolLM2-135M forward step for m tokens: 30 layers of Q4_1
// (q, k, v, o, gate, up, down: 92 MB with the output, more than the L3 cache, as in the real
// model) and the tied Q8_0 output matrix, each weight with its own buffer.
static void model_step(tk_pool *pool, int64_t m, int logits_rows, int grouped) {
    enum { LAYERS = 30 };
    static const struct { int64_t n, k; } layer[] = {{576, 576}, {192, 576}, {192, 576}, {576, 576},
                                                     {1536, 576}, {1536, 576}, {576, 1536}};
    const type_info *q4_1 = find_type("q4_1"), *q8_0 = find_type("q8_0");
    void *w[LAYERS][7];
    double bytes = 0, flops = 0;
    for (int l = 0; l < LAYERS; l++)
        for (int t = 0; t < 7; t++) {
            w[l][t] = random_weights(q4_1, layer[t].n, layer[t].k);
            bytes += (double)(layer[t].n * layer[t].k / 32 * 20);
            flops += 2.0 * (double)(layer[t].n * layer[t].k * m);
        }
    void *out = random_weights(q8_0, 49152, 576);
    int64_t out_rows = logits_rows < m ? logits_rows : m;
    bytes += 49152.0 * 576 / 32 * 34;
    flops += 2.0 * 49152 * 576 * (double)out_rows;
    float *x = malloc(sizeof(float) * (size_t)(m * 1536)), *y = malloc(sizeof(float) * (size_t)(m * 49152 + m * 3072));
    for (int64_t i = 0; i < m * 1536; i++) x[i] = next_unit();
    double best = 1e9;
    for (int rep = 0; rep < 8; rep++) {
        double t0 = now_s();
        for (int l = 0; l < LAYERS; l++) {
            if (grouped) { // q, k, v as one job, o, gate and up as one, down: as Transformer runs them
                int types[3] = {3, 3, 3};
                int64_t qkv_n[3] = {576, 192, 192}, ffn_n[2] = {1536, 1536};
                float *qkv_y[3] = {y, y + m * 576, y + m * 768}, *ffn_y[2] = {y, y + m * 1536};
                tk_matmul_many(pool, 3, types, (const void *const *)&w[l][0], qkv_n, 576, x, m, qkv_y);
                tk_matmul(pool, 3, w[l][3], 576, 576, x, m, y);
                tk_matmul_many(pool, 2, types, (const void *const *)&w[l][4], ffn_n, 576, x, m, ffn_y);
                tk_matmul(pool, 3, w[l][6], 576, 1536, x, m, y);
            } else {
                for (int t = 0; t < 7; t++) tk_matmul(pool, 3, w[l][t], layer[t].n, layer[t].k, x, m, y);
            }
        }
        tk_matmul(pool, 8, out, 49152, 576, x, out_rows, y);
        double dt = now_s() - t0;
        if (rep > 0 && dt < best) best = dt;
    }
    printf("model step%s m=%-4lld (logits for %lld): %8.3f ms  %6.2f GB/s weights  %7.2f GFLOP/s  %8.1f tokens/s\n",
           grouped ? " (grouped)" : "", (long long)m, (long long)out_rows, best * 1e3, bytes / best * 1e-9, flops / best * 1e-9, (double)m / best);
    for (int l = 0; l < LAYERS; l++)
        for (int t = 0; t < 7; t++) free(w[l][t]);
    free(out);
    free(x);
    free(y);
}

int main(int argc, char **argv) {
    int threads = 2, do_check = 0, step = 0;
    int64_t only_m = 0;
    int grouped_first = 0;
    const char *only = NULL, *backend = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--check")) do_check = 1;
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--model-step")) step = 1;
        else if (!strcmp(argv[i], "--grouped-first")) grouped_first = 1;
        else if (!strcmp(argv[i], "--type") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--m") && i + 1 < argc) only_m = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--check] [--backend NAME] [--type NAME] [--m ROWS] [--model-step [--grouped-first]]\n", argv[0]);
            return 2;
        }
    }
    tk_pool *pool = tk_pool_create(threads);
    if (do_check && check(pool)) return 1;
    if (backend && tk_pool_set_backend(pool, backend) != 0) {
        fprintf(stderr, "kernel_bench: unknown backend or one this CPU cannot run: %s\n", backend);
        return 2;
    }
    printf("backend %s, %d threads\n", tk_pool_backend(pool), tk_pool_threads(pool));
    dispatch_cost(pool);
    if (step) {
        read_bandwidth(pool);
        // Decode: one token (m = 1) or a batch of sequences each decoding one token; prefill: a
        // 512-token prompt chunk with logits for its last position only.
        // Each size twice: products one job each and grouped as Transformer runs them
        // (--grouped-first swaps the order, to see the order's effect on a loaded machine).
        for (int i = 0; i < 2; i++) model_step(pool, 1, 1, i ^ grouped_first);
        for (int i = 0; i < 2; i++) model_step(pool, 8, 8, i ^ grouped_first);
        for (int i = 0; i < 2; i++) model_step(pool, 32, 32, i ^ grouped_first);
        model_step(pool, 512, 1, 0);
        tk_pool_destroy(pool);
        return 0;
    }

    static const struct { int64_t n, k; } shapes[] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
    static const int64_t ms[] = {1, 8, 32, 512};
    const char *bench_types[] = {"q4_1", "q8_0", "q4_0", "q5_0", "q4_K", "q6_K", "f16"};
    for (size_t bt = 0; bt < sizeof(bench_types) / sizeof(bench_types[0]); bt++) {
        const type_info *t = NULL;
        for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
            if (!strcmp(types[ti].name, bench_types[bt])) t = &types[ti];
        if (only && strcmp(only, t->name)) continue;
        printf("\n%-5s %11s %5s %10s %9s %9s\n", t->name, "n x k", "m", "us/call", "GB/s", "GFLOP/s");
        for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
            // K-quants need k % 256 == 0: SmolLM2's 576 becomes 768 for them.
            int64_t n = shapes[si].n, k = (shapes[si].k + t->block_size - 1) / t->block_size * t->block_size;
            void *w = random_weights(t, n, k);
            double wbytes = (double)(n * k / t->block_size * t->block_bytes);
            for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++) {
                int64_t m = ms[mi];
                if (only_m && m != only_m) continue;
                float *x = malloc(sizeof(float) * (size_t)(m * k)), *y = malloc(sizeof(float) * (size_t)(m * n));
                for (int64_t i = 0; i < m * k; i++) x[i] = next_unit();
                double flops = 2.0 * (double)n * (double)k * (double)m;
                int reps = (int)(2e8 / (flops + 4e6 * (double)m)) + 3; // ~0.1-0.3 s per case
                if (tk_matmul(pool, t->type, w, n, k, x, m, y) != 0) { // warm up
                    fprintf(stderr, "tk_matmul failed for %s %lldx%lld\n", t->name, (long long)n, (long long)k);
                    return 1;
                }
                double best = 1e9;
                for (int rep = 0; rep < 3; rep++) {
                    double t0 = now_s();
                    for (int r = 0; r < reps; r++) tk_matmul(pool, t->type, w, n, k, x, m, y);
                    double dt = (now_s() - t0) / reps;
                    if (dt < best) best = dt;
                }
                printf("%-5s %5lldx%-5lld %5lld %10.1f %9.2f %9.2f\n", t->name, (long long)n, (long long)k,
                       (long long)m, best * 1e6, wbytes / best * 1e-9, flops / best * 1e-9);
                free(x);
                free(y);
            }
            free(w);
        }
    }
    tk_pool_destroy(pool);
    return 0;
}
