// Portable (plain C) kernels: activation quantization and one dot product per weight row and
// activation row for every supported weight type. The reference the SIMD paths must match.
#include <math.h>

#include "tk_internal.h"

void tk_quantize_rows_portable(const float *x, int64_t k, int64_t j0, int64_t j1, const tk_act_q8 *out) {
    int64_t nb = k / TK_QK;
    for (int64_t j = j0; j < j1; j++) {
        const float *xr = x + j * k;
        int8_t *q = out->q + j * out->q_stride;
        float *d = out->d + j * out->b_stride;
        float *s = out->s + j * out->b_stride * 2;
        float *dexp = out->dexp + j * out->b_stride * 8;
        for (int64_t b = 0; b < out->b_stride; b++) {
            float amax = 0.0f;
            if (b < nb)
                for (int l = 0; l < TK_QK; l++) amax = fmaxf(amax, fabsf(xr[b * TK_QK + l]));
            float db = amax / 127.0f;
            float id = db != 0.0f ? 1.0f / db : 0.0f;
            int sum[2] = {0, 0};
            for (int l = 0; l < TK_QK; l++) {
                int v = b < nb ? (int)nearbyintf(xr[b * TK_QK + l] * id) : 0; // half to even, as SIMD
                q[b * TK_QK + l] = (int8_t)v;
                sum[l / 16] += v;
            }
            d[b] = db;
            s[2 * b] = db * (float)sum[0];
            s[2 * b + 1] = db * (float)sum[1];
            for (int l = 0; l < 8; l++) dexp[b * 8 + l] = db;
        }
    }
}

// Each dot function: one weight row (k / block size blocks) against one quantized activation row.

static float dot_q4_0(const uint8_t *w, int64_t k, const int8_t *xq, const float *xd, const float *xs) {
    (void)xs;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / TK_QK; b++, w += TK_Q4_0_BYTES, xq += TK_QK) {
        const uint8_t *qs = w + 2;
        int sum = 0;
        for (int l = 0; l < 16; l++)
            sum += ((qs[l] & 0xF) - 8) * xq[l] + ((qs[l] >> 4) - 8) * xq[l + 16];
        acc += tk_read_f16(w) * xd[b] * (float)sum;
    }
    return acc;
}

static float dot_q4_1(const uint8_t *w, int64_t k, const int8_t *xq, const float *xd, const float *xs) {
    float acc = 0.0f;
    for (int64_t b = 0; b < k / TK_QK; b++, w += TK_Q4_1_BYTES, xq += TK_QK) {
        const uint8_t *qs = w + 4;
        int sum = 0;
        for (int l = 0; l < 16; l++) sum += (qs[l] & 0xF) * xq[l] + (qs[l] >> 4) * xq[l + 16];
        acc += tk_read_f16(w) * xd[b] * (float)sum + tk_read_f16(w + 2) * (xs[2 * b] + xs[2 * b + 1]);
    }
    return acc;
}

static inline uint32_t tk_read_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// Q5: weight l (< 16) takes bit l of qh as its fifth bit; weight l + 16 takes bit l + 16.
static inline int q5_sum(const uint8_t *qs, uint32_t qh, const int8_t *xq, int offset) {
    int sum = 0;
    for (int l = 0; l < 16; l++) {
        int lo = (qs[l] & 0xF) | (int)(((qh >> l) & 1) << 4);
        int hi = (qs[l] >> 4) | (int)(((qh >> (l + 16)) & 1) << 4);
        sum += (lo - offset) * xq[l] + (hi - offset) * xq[l + 16];
    }
    return sum;
}

static float dot_q5_0(const uint8_t *w, int64_t k, const int8_t *xq, const float *xd, const float *xs) {
    (void)xs;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / TK_QK; b++, w += TK_Q5_0_BYTES, xq += TK_QK)
        acc += tk_read_f16(w) * xd[b] * (float)q5_sum(w + 6, tk_read_u32(w + 2), xq, 16);
    return acc;
}

static float dot_q5_1(const uint8_t *w, int64_t k, const int8_t *xq, const float *xd, const float *xs) {
    float acc = 0.0f;
    for (int64_t b = 0; b < k / TK_QK; b++, w += TK_Q5_1_BYTES, xq += TK_QK)
        acc += tk_read_f16(w) * xd[b] * (float)q5_sum(w + 8, tk_read_u32(w + 4), xq, 0) +
               tk_read_f16(w + 2) * (xs[2 * b] + xs[2 * b + 1]);
    return acc;
}

static float dot_q8_0(const uint8_t *w, int64_t k, const int8_t *xq, const float *xd, const float *xs) {
    (void)xs;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / TK_QK; b++, w += TK_Q8_0_BYTES, xq += TK_QK) {
        const int8_t *qs = (const int8_t *)(w + 2);
        int sum = 0;
        for (int l = 0; l < TK_QK; l++) sum += qs[l] * xq[l];
        acc += tk_read_f16(w) * xd[b] * (float)sum;
    }
    return acc;
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block.
static inline void k_scale_min(int j, const uint8_t *scales, int *sc, int *mn) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *mn = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *mn = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

// Q4_K: sub-blocks of 32; sub-block 2p uses the low nibbles of qs[32p..32p+31], 2p+1 the high.
static float dot_q4_K(const uint8_t *w, int64_t k, const int8_t *xq, const float *xd, const float *xs) {
    float acc = 0.0f;
    for (int64_t sb = 0; sb < k / TK_QK_K; sb++, w += TK_Q4_K_BYTES) {
        float d = tk_read_f16(w), dmin = tk_read_f16(w + 2);
        const uint8_t *scales = w + 4, *qs = w + 16;
        for (int j = 0; j < 8; j++) {
            int64_t b = sb * 8 + j;
            const int8_t *x = xq + b * TK_QK;
            const uint8_t *q = qs + (j / 2) * 32;
            int shift = (j & 1) * 4, sum = 0, sc, mn;
            for (int l = 0; l < 32; l++) sum += ((q[l] >> shift) & 0xF) * x[l];
            k_scale_min(j, scales, &sc, &mn);
            acc += d * (float)sc * xd[b] * (float)sum - dmin * (float)mn * (xs[2 * b] + xs[2 * b + 1]);
        }
    }
    return acc;
}

// Q5_K: as Q4_K, with the fifth bit of weight l of sub-block j in bit j of qh[l].
static float dot_q5_K(const uint8_t *w, int64_t k, const int8_t *xq, const float *xd, const float *xs) {
    float acc = 0.0f;
    for (int64_t sb = 0; sb < k / TK_QK_K; sb++, w += TK_Q5_K_BYTES) {
        float d = tk_read_f16(w), dmin = tk_read_f16(w + 2);
        const uint8_t *scales = w + 4, *qh = w + 16, *qs = w + 48;
        for (int j = 0; j < 8; j++) {
            int64_t b = sb * 8 + j;
            const int8_t *x = xq + b * TK_QK;
            const uint8_t *q = qs + (j / 2) * 32;
            int shift = (j & 1) * 4, sum = 0, sc, mn;
            for (int l = 0; l < 32; l++)
                sum += (((q[l] >> shift) & 0xF) | (((qh[l] >> j) & 1) << 4)) * x[l];
            k_scale_min(j, scales, &sc, &mn);
            acc += d * (float)sc * xd[b] * (float)sum - dmin * (float)mn * (xs[2 * b] + xs[2 * b + 1]);
        }
    }
    return acc;
}

// Q6_K: two halves of 128; in a half, weight 32g + l (g 0..3, l 0..31) is
// low nibble of ql[l + 32 (g&1)] (shifted by 4 for g >= 2) | bits 2g..2g+1 of qh[l], minus 32,
// with int8 scale sc[g*2 + l/16].
static float dot_q6_K(const uint8_t *w, int64_t k, const int8_t *xq, const float *xd, const float *xs) {
    (void)xs;
    float acc = 0.0f;
    for (int64_t sb = 0; sb < k / TK_QK_K; sb++, w += TK_Q6_K_BYTES) {
        float d = tk_read_f16(w + 208);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = w + half * 64, *qh = w + 128 + half * 32;
            const int8_t *sc = (const int8_t *)(w + 192) + half * 8;
            for (int g = 0; g < 4; g++) {
                int64_t b = sb * 8 + half * 4 + g;
                const int8_t *x = xq + b * TK_QK;
                int sums[2] = {0, 0};
                for (int l = 0; l < 32; l++) {
                    int lo = (ql[l + 32 * (g & 1)] >> (4 * (g >> 1))) & 0xF;
                    int q = (lo | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
                    sums[l / 16] += q * x[l];
                }
                acc += d * xd[b] * (float)(sc[g * 2] * sums[0] + sc[g * 2 + 1] * sums[1]);
            }
        }
    }
    return acc;
}

#define TK_Q8_KERNEL(name, dotfn)                                                              \
    static void name(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k,   \
                     const tk_act_q8 *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {      \
        for (int64_t i = i0; i < i1; i++)                                                      \
            for (int64_t j = j0; j < j1; j++)                                                  \
                y[j * ldy + i] = dotfn(w + i * row_bytes, k, x->q + j * x->q_stride,           \
                                       x->d + j * x->b_stride, x->s + j * x->b_stride * 2);        \
    }

TK_Q8_KERNEL(kernel_q4_0, dot_q4_0)
TK_Q8_KERNEL(kernel_q4_1, dot_q4_1)
TK_Q8_KERNEL(kernel_q5_0, dot_q5_0)
TK_Q8_KERNEL(kernel_q5_1, dot_q5_1)
TK_Q8_KERNEL(kernel_q8_0, dot_q8_0)
TK_Q8_KERNEL(kernel_q4_K, dot_q4_K)
TK_Q8_KERNEL(kernel_q5_K, dot_q5_K)
TK_Q8_KERNEL(kernel_q6_K, dot_q6_K)

tk_q8_kernel tk_q8_kernel_portable(int wtype) {
    switch (wtype) {
    case TK_Q4_0: return kernel_q4_0;
    case TK_Q4_1: return kernel_q4_1;
    case TK_Q5_0: return kernel_q5_0;
    case TK_Q5_1: return kernel_q5_1;
    case TK_Q8_0: return kernel_q8_0;
    case TK_Q4_K: return kernel_q4_K;
    case TK_Q5_K: return kernel_q5_K;
    case TK_Q6_K: return kernel_q6_K;
    default: return NULL;
    }
}

#define TK_F32_KERNEL(name, load)                                                              \
    static void name(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k,   \
                     const float *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {          \
        for (int64_t i = i0; i < i1; i++) {                                                    \
            const uint8_t *wr = w + i * row_bytes;                                             \
            for (int64_t j = j0; j < j1; j++) {                                                \
                const float *xr = x + j * k;                                                   \
                float acc = 0.0f;                                                              \
                for (int64_t l = 0; l < k; l++) acc += load(wr, l) * xr[l];                    \
                y[j * ldy + i] = acc;                                                          \
            }                                                                                  \
        }                                                                                      \
    }

TK_F32_KERNEL(kernel_f32, tk_load_f32)
TK_F32_KERNEL(kernel_f16, tk_load_f16)
TK_F32_KERNEL(kernel_bf16, tk_load_bf16)

tk_f32_kernel tk_f32_kernel_portable(int wtype) {
    switch (wtype) {
    case TK_F32: return kernel_f32;
    case TK_F16: return kernel_f16;
    case TK_BF16: return kernel_bf16;
    default: return NULL;
    }
}
