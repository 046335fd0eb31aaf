// Row-wise and element-wise operations of the forward pass. Hot loops are compiled for
// AVX-512 / AVX2 / baseline and picked at load time (target_clones).
#include "tk_ops.h"
#include "tk_fast_exp.h"
#include <math.h>

#define TK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

TK_CLONES
void tk_rmsnorm(const float *x, const float *weight, float *y, int rows, int dim, float eps) {
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

TK_CLONES
void tk_rope_apply(float *x, int rows, int heads, int head_dim, const float *cos_t,
                   const float *sin_t, int neox) {
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

TK_CLONES
void tk_swiglu(float *gate, const float *up, long n) {
    for (long i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = g / (1.0f + tk_fast_expf(-g)) * up[i];
    }
}

TK_CLONES
void tk_add(float *y, const float *x, long n) {
    for (long i = 0; i < n; i++) y[i] += x[i];
}

TK_CLONES
void tk_add_bias(float *y, const float *bias, int rows, int n) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) y[(long)r * n + i] += bias[i];
}
