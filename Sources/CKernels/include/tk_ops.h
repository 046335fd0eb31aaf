// Element-wise and row-wise operations of the transformer forward pass (engine side).
// Rows are contiguous float32 vectors; every function is single-threaded and cheap next to
// the matrix products. `pool` only selects the kernel path (its tk_pool_set_backend, else the
// process-wide tk_select_path); it may be NULL.
#pragma once
#include <stdint.h>
#include "tk_matmul.h"

#ifdef __cplusplus
extern "C" {
#endif

/// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, for `rows` rows of `dim` floats.
/// x and y may alias.
void tk_rmsnorm(tk_pool *pool, const float *x, const float *weight, float *y, int rows, int dim, float eps);

/// Rotary embedding tables for `n` positions: cos/sin[n][head_dim/2], angle of pair i at
/// position p = p * freq_scale * base^(-2i/head_dim) / (freq_factors ? freq_factors[i] : 1).
void tk_rope_table(const int32_t *positions, int n, int head_dim, float base, float freq_scale,
                   const float *freq_factors, float *cos_out, float *sin_out);

/// Rotates `heads` heads of `head_dim` in each of `rows` rows (row stride heads*head_dim) with
/// the tables of tk_rope_table (one table row per row). neox = 0: pairs (2i, 2i+1) (llama's
/// GGUF layout); neox = 1: pairs (i, i + head_dim/2) (qwen2).
void tk_rope_apply(tk_pool *pool, float *x, int rows, int heads, int head_dim, const float *cos_t,
                   const float *sin_t, int neox);

/// gate[i] = silu(gate[i]) * up[i] for n floats.
void tk_swiglu(tk_pool *pool, float *gate, const float *up, long n);

/// y[i] += x[i] for n floats.
void tk_add(tk_pool *pool, float *y, const float *x, long n);

/// y[r][i] += bias[i] for `rows` rows of n floats.
void tk_add_bias(tk_pool *pool, float *y, const float *bias, int rows, int n);

#ifdef __cplusplus
}
#endif
