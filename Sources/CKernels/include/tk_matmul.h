// Quantized matrix products on the CPU and the compute thread pool they run on.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// A pool of persistent worker threads. Workers spin briefly after each job, then sleep on a
// futex, so a dispatch costs microseconds. Not reentrant: one tk_pool_run at a time per pool.
typedef struct tk_pool tk_pool;

// n_threads counts the caller as thread 0 (n_threads - 1 workers are started); values < 1
// mean 1. Returns NULL if a thread or memory cannot be had.
tk_pool *tk_pool_create(int n_threads);
void tk_pool_destroy(tk_pool *pool);
int tk_pool_threads(const tk_pool *pool);

// Runs fn(ctx, ith, nth) on all nth threads (the caller is ith 0); returns when all finished.
void tk_pool_run(tk_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx);

// How many workers are past their spin and asleep (or about to sleep) on the futex: what a
// test of the wake-up path waits for.
int tk_pool_sleeping_workers(tk_pool *pool);

// Y[m][n] = X[m][k] · W[n][k]^T.
// W: n rows of k elements in ggml type `wtype`, row-major, exactly as stored in GGUF (each row
// k / block_size blocks). X and Y: f32, row-major, contiguous. pool may be NULL (runs on the
// caller only). Quantized types quantize X to 8 bits per 32 values first (relative error
// about 1e-3 against a float product); F32, F16 and BF16 weights use float arithmetic.
// Batch invariant: row j of Y is the same, bit for bit, whatever m and the other rows of X are
// (for a given backend), so batching never changes a sequence's results.
// Returns 0, or -1 if the type is unsupported, k is not a multiple of its block size, or a
// size is negative.
int tk_matmul(tk_pool *pool, int wtype, const void *w, int64_t n, int64_t k,
              const float *x, int64_t m, float *y);

// Several products of the same X in one call: Y_p = X · W_p^T for p < count (at most
// TK_MATMUL_MAX_PARTS), e.g. a layer's query, key and value projections. X is quantized once
// and all products are one job for the pool, so its threads meet once instead of count times.
// Each Y_p is bit for bit what tk_matmul gives for it alone. Returns as tk_matmul (-1 also
// for count outside 1...TK_MATMUL_MAX_PARTS).
#define TK_MATMUL_MAX_PARTS 4
int tk_matmul_many(tk_pool *pool, int count, const int *wtypes, const void *const *ws, const int64_t *ns,
                   int64_t k, const float *x, int64_t m, float *const *ys);

// Whether tk_matmul supports weights of this ggml type.
int tk_matmul_supports(int wtype);

// Kernel paths: "avx512" (x86-64 with AVX-512 F/BW/VL/DQ and VNNI, AVX2, FMA, F16C), "avx2"
// (x86-64 with AVX2, FMA and F16C; AVX-VNNI products where the CPU has them, same results) and
// "portable" (plain C, any CPU). Every path quantizes activations the same way and is batch
// invariant; results of different paths agree to rounding, not bit for bit.

// Chooses the path of every pool without its own (tk_pool_set_backend) and of a NULL pool:
// "auto" (the fastest this CPU runs, the default), "avx512", "avx2" or "portable". Returns 0,
// -1 for an unknown name, -2 when this CPU cannot run that path (see tk_path_requirements).
// Call it before starting work.
int tk_select_path(const char *path);
// 1 when this CPU can run the path ("auto" always), 0 when not, -1 for an unknown name.
int tk_cpu_supports_path(const char *path);
// The instruction sets a path needs, in words ("" for portable, auto and unknown names).
const char *tk_path_requirements(const char *path);
// The path in use by default: "avx512", "avx2" or "portable".
const char *tk_cpu_path(void);
// The kernels of that path: "avx512-vnni", "avx2-vnni", "avx2-maddubs" (AVX2 without
// AVX-VNNI) or "portable".
const char *tk_cpu_backend(void);

// Makes this pool (its products, attention and ops) use the named kernels instead of the
// process-wide choice, for tests and benchmarks comparing them: a path name as above, or a
// kernel name as tk_cpu_backend returns. Returns 0, or -1 for an unknown name or kernels this
// CPU cannot run. Call it while the pool runs nothing.
int tk_pool_set_backend(tk_pool *pool, const char *name);
// The kernels this pool uses (NULL: the process-wide choice).
const char *tk_pool_backend(tk_pool *pool);

#ifdef __cplusplus
}
#endif
