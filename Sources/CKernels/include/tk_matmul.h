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

// Whether tk_matmul supports weights of this ggml type.
int tk_matmul_supports(int wtype);

// The kernels chosen for this CPU at first use: "avx512-vnni" (x86-64 with AVX-512 F/BW/VL/DQ,
// VNNI, F16C, FMA) or "portable" (plain C, any CPU). There is no AVX2 variant yet.
const char *tk_cpu_backend(void);

// Makes tk_matmul calls on this pool use the named backend instead of the CPU's best (for
// tests and benchmarks comparing paths): "portable", or the name tk_cpu_backend() returns.
// Returns 0, or -1 for any other name. Call it while the pool runs nothing.
int tk_pool_set_backend(tk_pool *pool, const char *name);

#ifdef __cplusplus
}
#endif
