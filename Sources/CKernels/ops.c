// Row-wise and element-wise operations of the forward pass. Hot loops are compiled for
// AVX-512 / AVX2 / baseline (TK_PATH_VARIANTS) and run in the variant of the pool's path.
#include "tk_ops.h"
#include "tk_fast_exp.h"
#include "tk_internal.h"
#include <math.h>

TK_PATH_VARIANTS(rmsnorm, (const float *x, const float *weight, float *y, int rows, int dim, float eps),
                 (x, weight, y, rows, dim, eps))
void tk_rmsnorm(tk_pool *pool, const float *x, const float *weight, float *y, int rows, int dim, float eps) {
    TK_PATH_DISPATCH(tk_pool_path(pool), rmsnorm, (x, weight, y, rows, dim, eps))
}
static inline __attribute__((always_inline)) void rmsnorm_body(const float *x, const float *weight, float *y,
                                                               int rows, int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * dim;
        float *yr = y + (long)r * dim;
        float lanes[16] = {0};
        int i = 0;
        for (; i + 16 <= dim; i += 16)
            for (int l = 0; l < 16; l++) lanes[l] += xr[i + l] * xr[i + l];
        double sum = 0;
        for (int l = 0; l < 16; l++) sum += lanes[l];
        for (; i < dim; i++) sum += (double)xr[i] * xr[i];
        const float inv = 1.0f / sqrtf((float)(sum / dim) + eps);
        for (int j = 0; j < dim; j++) yr[j] = xr[j] * inv * weight[j];
    }
}

void tk_rope_table(const int32_t *positions, int n, int head_dim, float base, float freq_scale,
                   const float *freq_factors, float *cos_out, float *sin_out) {
    const int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        double inv_freq = pow((double)base, -2.0 * i / head_dim) * freq_scale;
        if (freq_factors) inv_freq /= freq_factors[i];
        for (int t = 0; t < n; t++) {
            const double angle = (double)positions[t] * inv_freq;
            cos_out[(long)t * half + i] = (float)cos(angle);
            sin_out[(long)t * half + i] = (float)sin(angle);
        }
    }
}

TK_PATH_VARIANTS(rope_apply, (float *x, int rows, int heads, int head_dim, const float *cos_t, const float *sin_t, int neox),
                 (x, rows, heads, head_dim, cos_t, sin_t, neox))
void tk_rope_apply(tk_pool *pool, float *x, int rows, int heads, int head_dim, const float *cos_t,
                   const float *sin_t, int neox) {
    TK_PATH_DISPATCH(tk_pool_path(pool), rope_apply, (x, rows, heads, head_dim, cos_t, sin_t, neox))
}
static inline __attribute__((always_inline)) void rope_apply_body(float *x, int rows, int heads, int head_dim,
                                                                  const float *cos_t, const float *sin_t, int neox) {
    const int half = head_dim / 2;
    for (int r = 0; r < rows; r++) {
        const float *c = cos_t + (long)r * half;
        const float *s = sin_t + (long)r * half;
        for (int h = 0; h < heads; h++) {
            float *v = x + ((long)r * heads + h) * head_dim;
            if (neox) {
                for (int i = 0; i < half; i++) {
                    const float a = v[i], b = v[i + half];
                    v[i] = a * c[i] - b * s[i];
                    v[i + half] = a * s[i] + b * c[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    const float a = v[2 * i], b = v[2 * i + 1];
                    v[2 * i] = a * c[i] - b * s[i];
                    v[2 * i + 1] = a * s[i] + b * c[i];
                }
            }
        }
    }
}

TK_PATH_VARIANTS(swiglu, (float *gate, const float *up, long n), (gate, up, n))
void tk_swiglu(tk_pool *pool, float *gate, const float *up, long n) {
    TK_PATH_DISPATCH(tk_pool_path(pool), swiglu, (gate, up, n))
}
static inline __attribute__((always_inline)) void swiglu_body(float *gate, const float *up, long n) {
    for (long i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = g / (1.0f + tk_fast_expf(-g)) * up[i];
    }
}

TK_PATH_VARIANTS(add, (float *y, const float *x, long n), (y, x, n))
void tk_add(tk_pool *pool, float *y, const float *x, long n) { TK_PATH_DISPATCH(tk_pool_path(pool), add, (y, x, n)) }
static inline __attribute__((always_inline)) void add_body(float *y, const float *x, long n) {
    for (long i = 0; i < n; i++) y[i] += x[i];
}

TK_PATH_VARIANTS(add_bias, (float *y, const float *bias, int rows, int n), (y, bias, rows, n))
void tk_add_bias(tk_pool *pool, float *y, const float *bias, int rows, int n) {
    TK_PATH_DISPATCH(tk_pool_path(pool), add_bias, (y, bias, rows, n))
}
static inline __attribute__((always_inline)) void add_bias_body(float *y, const float *bias, int rows, int n) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) y[(long)r * n + i] += bias[i];
}
