// One thread, one activation row (decode): tandem's tk_matmul on a chosen backend against ggml's
// own vec_dot (llama.cpp's CPU kernels, linked from a llama.cpp build) on the same weights,
// quantized by ggml from random floats. Short rounds alternate tandem and ggml; each reports
// its fastest round (on a loaded machine most rounds are preempted somewhere, the fastest is
// the one that ran undisturbed). Both times include quantizing the activation row.
// Usage: ggml_compare TYPE N K BACKEND ROUNDS   (TYPE: q4_0 q4_1 q5_0 q8_0 q4_K q5_K q6_K)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-cpu.h"
#include "ggml.h"
#include "tk_matmul.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned long long rng = 88172645463325252ull;
static float unit(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) & 0xFFFFFF) / 16777216.0f * 2 - 1;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s TYPE N K BACKEND ROUNDS\n", argv[0]);
        return 2;
    }
    static const struct { const char *name; enum ggml_type type; } types[] = {
        {"q4_0", GGML_TYPE_Q4_0}, {"q4_1", GGML_TYPE_Q4_1}, {"q5_0", GGML_TYPE_Q5_0}, {"q8_0", GGML_TYPE_Q8_0},
        {"q4_K", GGML_TYPE_Q4_K}, {"q5_K", GGML_TYPE_Q5_K}, {"q6_K", GGML_TYPE_Q6_K},
    };
    int ti = -1;
    for (int i = 0; i < (int)(sizeof(types) / sizeof(types[0])); i++)
        if (!strcmp(argv[1], types[i].name)) ti = i;
    int64_t n = atoll(argv[2]), k = atoll(argv[3]);
    int rounds = atoi(argv[5]);
    if (ti < 0 || n <= 0 || k <= 0 || rounds <= 0) {
        fprintf(stderr, "ggml_compare: bad arguments\n");
        return 2;
    }
    enum ggml_type t = types[ti].type;
    ggml_cpu_init();
    float *wf = malloc(sizeof(float) * (size_t)(n * k)), *x = malloc(sizeof(float) * (size_t)k);
    float *y = malloc(sizeof(float) * (size_t)n), *y_ggml = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n * k; i++) wf[i] = unit();
    for (int64_t i = 0; i < k; i++) x[i] = unit();
    size_t row_bytes = ggml_row_size(t, k);
    // Decode streams each weight matrix from L3 or memory, not from L2: with TK_COLD_MB set,
    // rounds rotate through copies of the matrix that together take that many MiB.
    size_t mat_bytes = row_bytes * (size_t)n;
    const char *cold = getenv("TK_COLD_MB");
    int copies = cold ? (int)((atof(cold) * 1048576.0) / (double)mat_bytes) + 1 : 1;
    char *wall = malloc(mat_bytes * (size_t)copies);
    ggml_quantize_chunk(t, wf, wall, 0, n, k, NULL);
    for (int c = 1; c < copies; c++) memcpy(wall + c * mat_bytes, wall, mat_bytes);
    int next = 0; // the copy the next product reads
    const struct ggml_type_traits_cpu *traits = ggml_get_type_traits_cpu(t);
    const struct ggml_type_traits_cpu *act_traits = ggml_get_type_traits_cpu(traits->vec_dot_type);
    void *xq = malloc(ggml_row_size(traits->vec_dot_type, k));
    tk_pool *pool = tk_pool_create(1);
    if (tk_pool_set_backend(pool, argv[4]) != 0) {
        fprintf(stderr, "ggml_compare: backend %s unknown or not runnable here\n", argv[4]);
        return 2;
    }
    double *tt = malloc(sizeof(double) * (size_t)rounds), *tg = malloc(sizeof(double) * (size_t)rounds);
    // Well under a scheduler time slice per round; with copies, 8 products more, so that the
    // fastest round still averages several reads from L3 rather than one or two.
    int reps = (int)(2e6 / (double)(n * k)) + 1 + (copies > 1 ? 8 : 0);
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        for (int i = 0; i < reps; i++) {
            tk_matmul(pool, (int)t, wall + (size_t)next * mat_bytes, n, k, x, 1, y);
            next = (next + 1) % copies;
        }
        tt[r] = (now_s() - t0) / reps;
        t0 = now_s();
        for (int i = 0; i < reps; i++) {
            act_traits->from_float(x, xq, k);
            const char *w = wall + (size_t)next * mat_bytes;
            next = (next + 1) % copies;
            for (int64_t row = 0; row < n; row++)
                traits->vec_dot((int)k, &y_ggml[row], 0, w + row * row_bytes, 0, xq, 0, 1);
        }
        tg[r] = (now_s() - t0) / reps;
    }
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; i++) {
        err += (double)(y[i] - y_ggml[i]) * (y[i] - y_ggml[i]);
        ref += (double)y_ggml[i] * y_ggml[i];
    }
    qsort(tt, (size_t)rounds, sizeof(double), by_value);
    qsort(tg, (size_t)rounds, sizeof(double), by_value);
    double mt = tt[0], mg = tg[0];
    printf("| %s | %lldx%lld | %s | %.1f | %.1f | %.2f | %.1e |\n", argv[1], (long long)n, (long long)k, argv[4],
           mt * 1e6, mg * 1e6, mg / mt, ref > 0 ? err / ref : 0.0);
    return 0;
}
