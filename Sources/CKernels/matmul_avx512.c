// AVX-512 VNNI kernels (x86-64 with avx512f/bw/vl/vnni; chosen at run time in matmul.c).
//
// Every quantized type goes through the same two steps per tile of TILE_ROWS weight rows and
// SEG_BLOCKS blocks of 32 weights:
//  1. stage: a type-specific unpacker writes the weights as unsigned bytes in element order,
//     a float scale per int32 lane (4 weights) and a float offset per 16 weights, so that
//     w = scale * q + offset / (activation scale) holds per element — see tk_stage below;
//  2. product: one shared micro-kernel multiplies the staged bytes with the quantized
//     activation rows (vpdpbusd: unsigned weights × signed activations, 64 per instruction),
//     four activation rows at a time, so each staged weight load serves four rows of X.
// Staging costs one pass over the tile's weights and is amortized over all rows of X.
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdalign.h>

#include "tk_internal.h"

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,f16c,fma"))), apply_to = function)

#define TILE_ROWS 4    // weight rows per tile (micro-kernel height)
#define TILE_COLS 4    // activation rows per micro-kernel call
#define FUSED_COLS 8   // activation rows per pass of the fused kernels over the weights
#define SEG_BLOCKS 64  // blocks of 32 per staged segment; a multiple of 8 (K-quant super-blocks)

// One tile's staged weights. For weight element e of block t of row r:
//   w[e] = dexp[r][8t + e/4] * q[r][32t + e] + c[r][2t + e/16] / d_x(block)
// i.e. the product with activation x = d_x * qx is
//   Σ dexp·d_x·(q·qx) over lanes  +  Σ c · (d_x Σ qx over the half block)  (= act->s).
typedef struct {
    alignas(64) uint8_t q[TILE_ROWS][SEG_BLOCKS * 32];
    alignas(64) float dexp[TILE_ROWS][SEG_BLOCKS * 8];
    alignas(64) float c[TILE_ROWS][SEG_BLOCKS * 2];
} tk_stage;

// Stages blocks [b0, b0 + nbs) of one weight row.
typedef void (*tk_stage_fn)(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c);

static inline float f16(const uint8_t *p) { return _cvtsh_ss(tk_read_u16(p)); }

static inline void put_scale(float *dexp, float *c, int64_t t, float d, float offset) {
    _mm256_storeu_ps(dexp + 8 * t, _mm256_set1_ps(d));
    c[2 * t] = offset;
    c[2 * t + 1] = offset;
}

// Low nibbles of 16 bytes are elements 0–15 of a block, high nibbles 16–31.
static inline void put_nibbles(uint8_t *q, __m128i qs, __mmask16 hi_lo, __mmask16 hi_hi) {
    const __m128i m4 = _mm_set1_epi8(0x0F), b4 = _mm_set1_epi8(16);
    __m128i lo = _mm_and_si128(qs, m4), hi = _mm_and_si128(_mm_srli_epi16(qs, 4), m4);
    lo = _mm_mask_add_epi8(lo, hi_lo, lo, b4); // fifth bits of Q5 types
    hi = _mm_mask_add_epi8(hi, hi_hi, hi, b4);
    _mm_storeu_si128((__m128i *)q, lo);
    _mm_storeu_si128((__m128i *)(q + 16), hi);
}

static void stage_q4_0(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c) {
    for (int64_t t = 0; t < nbs; t++) {
        const uint8_t *blk = row + (b0 + t) * TK_Q4_0_BYTES;
        float d = f16(blk);
        put_nibbles(q + 32 * t, _mm_loadu_si128((const __m128i *)(blk + 2)), 0, 0);
        put_scale(dexp, c, t, d, -8.0f * d);
    }
}

static void stage_q4_1(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c) {
    for (int64_t t = 0; t < nbs; t++) {
        const uint8_t *blk = row + (b0 + t) * TK_Q4_1_BYTES;
        put_nibbles(q + 32 * t, _mm_loadu_si128((const __m128i *)(blk + 4)), 0, 0);
        put_scale(dexp, c, t, f16(blk), f16(blk + 2));
    }
}

static inline uint32_t read_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void stage_q5_0(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c) {
    for (int64_t t = 0; t < nbs; t++) {
        const uint8_t *blk = row + (b0 + t) * TK_Q5_0_BYTES;
        uint32_t qh = read_u32(blk + 2);
        float d = f16(blk);
        put_nibbles(q + 32 * t, _mm_loadu_si128((const __m128i *)(blk + 6)), (__mmask16)qh, (__mmask16)(qh >> 16));
        put_scale(dexp, c, t, d, -16.0f * d);
    }
}

static void stage_q5_1(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c) {
    for (int64_t t = 0; t < nbs; t++) {
        const uint8_t *blk = row + (b0 + t) * TK_Q5_1_BYTES;
        uint32_t qh = read_u32(blk + 4);
        put_nibbles(q + 32 * t, _mm_loadu_si128((const __m128i *)(blk + 8)), (__mmask16)qh, (__mmask16)(qh >> 16));
        put_scale(dexp, c, t, f16(blk), f16(blk + 2));
    }
}

// Q8_0: signed weights are biased by 128 to unsigned bytes; the offset removes 128·Σx.
static void stage_q8_0(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c) {
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int64_t t = 0; t < nbs; t++) {
        const uint8_t *blk = row + (b0 + t) * TK_Q8_0_BYTES;
        float d = f16(blk);
        __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 2));
        _mm256_storeu_si256((__m256i *)(q + 32 * t), _mm256_xor_si256(v, bias));
        put_scale(dexp, c, t, d, -128.0f * d);
    }
}

static inline void k_scale_min(int j, const uint8_t *scales, int *sc, int *mn) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *mn = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *mn = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

// Q4_K and Q5_K: sub-block 2p takes the low nibbles of qs[32p..], 2p+1 the high ones; Q5_K's
// fifth bit of element l of sub-block j is bit j of qh[l].
static inline void stage_k4(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c,
                            int block_bytes, int has_qh) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(16);
    for (int64_t t = 0; t < nbs; t += 8) {
        const uint8_t *sb = row + (b0 + t) / 8 * block_bytes;
        float d = f16(sb), dmin = f16(sb + 2);
        const uint8_t *scales = sb + 4, *qs = sb + (has_qh ? 48 : 16);
        __m256i qh = has_qh ? _mm256_loadu_si256((const __m256i *)(sb + 16)) : _mm256_setzero_si256();
        for (int p = 0; p < 4; p++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * p));
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (has_qh) {
                lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * p)))), lo, b4);
                hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * p + 1)))), hi, b4);
            }
            _mm256_storeu_si256((__m256i *)(q + 32 * (t + 2 * p)), lo);
            _mm256_storeu_si256((__m256i *)(q + 32 * (t + 2 * p + 1)), hi);
        }
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            k_scale_min(j, scales, &sc, &mn);
            put_scale(dexp, c, t + j, d * (float)sc, -dmin * (float)mn);
        }
    }
}

static void stage_q4_K(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c) {
    stage_k4(row, b0, nbs, q, dexp, c, TK_Q4_K_BYTES, 0);
}

static void stage_q5_K(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c) {
    stage_k4(row, b0, nbs, q, dexp, c, TK_Q5_K_BYTES, 1);
}

// Q6_K: in each half of 128, element 32g + l is the (g >> 1)-th nibble of ql[32 (g & 1) + l]
// with bits 2g..2g+1 of qh[l] above it, minus 32; scale sc[2g + l / 16] per 16 elements.
static void stage_q6_K(const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *dexp, float *c) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    for (int64_t t = 0; t < nbs; t += 8) {
        const uint8_t *sb = row + (b0 + t) / 8 * TK_Q6_K_BYTES;
        float d = f16(sb + 208);
        const int8_t *sc = (const int8_t *)(sb + 192);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = sb + 64 * half, *qhp = sb + 128 + 32 * half;
            __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
            for (int g = 0; g < 4; g++) {
                __m256i l4 = _mm256_loadu_si256((const __m256i *)(ql + 32 * (g & 1)));
                if (g >> 1) l4 = _mm256_srli_epi16(l4, 4);
                l4 = _mm256_and_si256(l4, m4);
                __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), m3);
                __m256i v = _mm256_or_si256(l4, _mm256_slli_epi16(h2, 4));
                int64_t tb = t + 4 * half + g;
                _mm256_storeu_si256((__m256i *)(q + 32 * tb), v);
                float d0 = d * (float)sc[8 * half + 2 * g], d1 = d * (float)sc[8 * half + 2 * g + 1];
                _mm_storeu_ps(dexp + 8 * tb, _mm_set1_ps(d0));
                _mm_storeu_ps(dexp + 8 * tb + 4, _mm_set1_ps(d1));
                c[2 * tb] = -32.0f * d0;
                c[2 * tb + 1] = -32.0f * d1;
            }
        }
    }
}

// Same result as tk_quantize_rows_portable (round half to even, scale amax / 127), 32 at a time.
void tk_quantize_rows_avx512(const float *x, int64_t k, int64_t j0, int64_t j1, const tk_act_q8 *out) {
    int64_t nb = k / TK_QK;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t j = j0; j < j1; j++) {
        const float *xr = x + j * k;
        int8_t *q = out->q + j * out->q_stride;
        float *d = out->d + j * out->b_stride, *s = out->s + j * out->b_stride * 2;
        float *dexp = out->dexp + j * out->b_stride * 8;
        for (int64_t b = 0; b < out->b_stride; b++) {
            if (b >= nb) { // padding block
                memset(q + 32 * b, 0, 32);
                d[b] = 0.0f;
                s[2 * b] = s[2 * b + 1] = 0.0f;
                _mm256_storeu_ps(dexp + 8 * b, _mm256_setzero_ps());
                continue;
            }
            __m512 v0 = _mm512_loadu_ps(xr + 32 * b), v1 = _mm512_loadu_ps(xr + 32 * b + 16);
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
            float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
            __m512 vid = _mm512_set1_ps(id);
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
            _mm_storeu_si128((__m128i *)(q + 32 * b), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(q + 32 * b + 16), _mm512_cvtepi32_epi8(q1));
            d[b] = db;
            s[2 * b] = db * (float)_mm512_reduce_add_epi32(q0);
            s[2 * b + 1] = db * (float)_mm512_reduce_add_epi32(q1);
            _mm256_storeu_ps(dexp + 8 * b, _mm256_set1_ps(db));
        }
    }
}

static inline float dot_masked(const float *a, const float *b, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    int64_t l = 0;
    for (; l + 16 <= n; l += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + l), _mm512_loadu_ps(b + l), acc);
    if (l < n) {
        __mmask16 mk = (__mmask16)((1u << (n - l)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, a + l), _mm512_maskz_loadu_ps(mk, b + l), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

// acc[r][col] += staged rows r × activation rows j + col, over npairs pairs of blocks.
static inline __attribute__((always_inline)) void micro(const tk_stage *st, int64_t npairs, const tk_act_q8 *x,
                                                         int64_t j, int64_t b0, int rn, int rows, float *y,
                                                         int64_t ldy, int64_t i, int accumulate) {
    __m512 acc[TILE_ROWS][TILE_COLS];
    const int8_t *xq[TILE_COLS];
    const float *xd[TILE_COLS];
    for (int col = 0; col < rn; col++) {
        xq[col] = x->q + (j + col) * x->q_stride + b0 * 32;
        xd[col] = x->dexp + (j + col) * x->b_stride * 8 + b0 * 8;
        for (int r = 0; r < TILE_ROWS; r++) acc[r][col] = _mm512_setzero_ps();
    }
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t p = 0; p < npairs; p++) {
        __m512i wq[TILE_ROWS];
        __m512 wd[TILE_ROWS];
        for (int r = 0; r < TILE_ROWS; r++) {
            wq[r] = _mm512_load_si512((const void *)(st->q[r] + 64 * p));
            wd[r] = _mm512_load_ps(st->dexp[r] + 16 * p);
        }
        for (int col = 0; col < rn; col++) {
            __m512i xv = _mm512_loadu_si512((const void *)(xq[col] + 64 * p));
            __m512 xs = _mm512_loadu_ps(xd[col] + 16 * p);
            for (int r = 0; r < TILE_ROWS; r++) {
                __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, wq[r], xv));
                acc[r][col] = _mm512_fmadd_ps(dot, _mm512_mul_ps(wd[r], xs), acc[r][col]);
            }
        }
    }
    for (int col = 0; col < rn; col++) {
        const float *s = x->s + (j + col) * x->b_stride * 2 + b0 * 2;
        for (int r = 0; r < rows; r++) {
            float v = _mm512_reduce_add_ps(acc[r][col]) + dot_masked(st->c[r], s, 4 * npairs);
            float *out = y + (j + col) * ldy + i + r;
            *out = accumulate ? *out + v : v;
        }
    }
}

#define TK_MICRO(rn_)                                                                              \
    static void micro_##rn_(const tk_stage *st, int64_t npairs, const tk_act_q8 *x, int64_t j,     \
                            int64_t b0, int rows, float *y, int64_t ldy, int64_t i, int accumulate) { \
        micro(st, npairs, x, j, b0, rn_, rows, y, ldy, i, accumulate);                             \
    }
TK_MICRO(1)
TK_MICRO(2)
TK_MICRO(3)
TK_MICRO(4)

static void staged_product(tk_stage_fn stage, const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1,
                           int64_t k, const tk_act_q8 *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {
    int64_t nb = k / TK_QK;
    tk_stage st;
    for (int64_t i = i0; i < i1; i += TILE_ROWS) {
        int rows = i1 - i < TILE_ROWS ? (int)(i1 - i) : TILE_ROWS;
        tk_prefetch_ahead(w, row_bytes, i0, i1, i, rows);
        for (int64_t b0 = 0; b0 < nb; b0 += SEG_BLOCKS) {
            int64_t nbs = nb - b0 < SEG_BLOCKS ? nb - b0 : SEG_BLOCKS, npairs = (nbs + 1) / 2;
            for (int r = 0; r < TILE_ROWS; r++) {
                if (r < rows) {
                    stage(w + (i + r) * row_bytes, b0, nbs, st.q[r], st.dexp[r], st.c[r]);
                    if (nbs & 1) { // pad to a whole pair with a zero block
                        memset(st.q[r] + 32 * nbs, 0, 32);
                        memset(st.dexp[r] + 8 * nbs, 0, 8 * sizeof(float));
                        memset(st.c[r] + 2 * nbs, 0, 2 * sizeof(float));
                    }
                } else {
                    memset(st.q[r], 0, (size_t)(64 * npairs));
                    memset(st.dexp[r], 0, (size_t)(16 * npairs) * sizeof(float));
                    memset(st.c[r], 0, (size_t)(4 * npairs) * sizeof(float));
                }
            }
            int accumulate = b0 > 0;
            int64_t j = j0;
            for (; j + 4 <= j1; j += 4) micro_4(&st, npairs, x, j, b0, rows, y, ldy, i, accumulate);
            switch (j1 - j) {
            case 3: micro_3(&st, npairs, x, j, b0, rows, y, ldy, i, accumulate); break;
            case 2: micro_2(&st, npairs, x, j, b0, rows, y, ldy, i, accumulate); break;
            case 1: micro_1(&st, npairs, x, j, b0, rows, y, ldy, i, accumulate); break;
            default: break;
            }
        }
    }
}

// Few activation rows (decode, batched decode): staging would cost about as much as the
// product, so rows of the 32-wide types are unpacked in registers, two blocks per step, and
// used for up to four activation rows at a time.
// Each step yields the unsigned weights of blocks 2p, 2p+1 in element order, their scales as
// [d0, o0, d1, o1] (o: the per-block offset before the 1/d_x factor, see tk_stage).
// Two 16-byte nibble groups -> [lo0, hi0, lo1, hi1] = elements 0–31 of block 0, then block 1:
// broadcasts from memory (no shuffle uops), then a shift by 4 of each block's second copy.
static inline __attribute__((always_inline)) __m512i nibble_pair(const uint8_t *qs0, const uint8_t *qs1) {
    __m512i z = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)qs0));
    z = _mm512_mask_broadcast_i32x4(z, 0xFF00, _mm_loadu_si128((const __m128i *)qs1));
    return _mm512_and_si512(_mm512_srlv_epi64(z, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0)), _mm512_set1_epi8(0x0F));
}

// [d0, offset0, d1, offset1] from the fp16 scale(s) at the start of two blocks: with a min
// (Q4_1, Q5_1) the offset is the min; without, it is `zero_point` × d.
static inline __attribute__((always_inline)) __m128 pair_scales(const uint8_t *b0, const uint8_t *b1, int has_min,
                                                               float zero_point) {
    if (has_min) return _mm_cvtph_ps(_mm_set_epi32(0, 0, (int)read_u32(b1), (int)read_u32(b0)));
    __m128 d = _mm_cvtph_ps(_mm_set_epi32(0, 0, 0, (int)(tk_read_u16(b0) | ((uint32_t)tk_read_u16(b1) << 16))));
    return _mm_mul_ps(_mm_unpacklo_ps(d, d), _mm_set_ps(zero_point, 1.0f, zero_point, 1.0f));
}

static inline __attribute__((always_inline)) int fused_block_bytes(int wtype) {
    switch (wtype) {
    case TK_Q4_0: return TK_Q4_0_BYTES;
    case TK_Q4_1: return TK_Q4_1_BYTES;
    case TK_Q5_0: return TK_Q5_0_BYTES;
    case TK_Q5_1: return TK_Q5_1_BYTES;
    default: return TK_Q8_0_BYTES;
    }
}

// Unsigned weights of blocks b0, b1 in element order and their scales (see pair_scales).
static inline __attribute__((always_inline)) __m512i fused_pair(int wtype, const uint8_t *b0, __m128 *dm) {
    const uint8_t *b1 = b0 + fused_block_bytes(wtype);
    switch (wtype) {
    case TK_Q4_0:
        *dm = pair_scales(b0, b1, 0, -8.0f);
        return nibble_pair(b0 + 2, b1 + 2);
    case TK_Q4_1:
        *dm = pair_scales(b0, b1, 1, 0.0f);
        return nibble_pair(b0 + 4, b1 + 4);
    case TK_Q5_0:
    case TK_Q5_1: {
        int has_min = wtype == TK_Q5_1, qh_at = has_min ? 4 : 2;
        *dm = pair_scales(b0, b1, has_min, -16.0f);
        __m512i z = nibble_pair(b0 + qh_at + 4, b1 + qh_at + 4);
        // Bit l of a block's qh is the fifth bit of its element l, which is byte l here.
        __mmask64 high = (__mmask64)read_u32(b0 + qh_at) | ((__mmask64)read_u32(b1 + qh_at) << 32);
        return _mm512_mask_add_epi8(z, high, z, _mm512_set1_epi8(16));
    }
    default: { // Q8_0: signed bytes biased to unsigned; the offset removes 128·Σx
        *dm = pair_scales(b0, b1, 0, -128.0f);
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + 2))),
                                       _mm256_loadu_si256((const __m256i *)(b1 + 2)), 1);
        return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    }
    }
}

// One pair of blocks (starting at block b) for up to FUSED_COLS activation rows: products into
// acc; returns the pair's offsets [o0, o0, o1, o1] (one per half block, as tk_stage's c).
static inline __attribute__((always_inline)) __m128 fused_step(int wtype, const uint8_t *pair, int pad, int64_t b,
                                                               const tk_act_q8 *x, int64_t j0, int rn, __m512 *acc) {
    const __m512i spread = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
    __m128 dm;
    __m512i wq = fused_pair(wtype, pair, &dm);
    if (pad) dm = _mm_blend_ps(dm, _mm_setzero_ps(), 0xC); // the zero block: d = offset = +0
    __m512 wd = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(dm));
    for (int col = 0; col < rn; col++) {
        int64_t j = j0 + col;
        __m512i xv = _mm512_loadu_si512((const void *)(x->q + j * x->q_stride + 32 * b));
        __m512 xs = _mm512_loadu_ps(x->dexp + j * x->b_stride * 8 + 8 * b);
        __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, xv));
        acc[col] = _mm512_fmadd_ps(dot, _mm512_mul_ps(wd, xs), acc[col]);
    }
    return _mm_permute_ps(dm, _MM_SHUFFLE(3, 3, 1, 1));
}

// The same arithmetic as staged_product, in the same order, so that a row's result does not
// depend on how many activation rows share the product (batch invariance): per segment of
// SEG_BLOCKS blocks, products accumulate lane-wise over pairs of blocks; offsets accumulate
// four pairs (16 half blocks) per step in 16 lanes, element e of the segment's c·s in lane
// e mod 16, as dot_masked does; an odd last block is paired with a zero block; segment sums are
// added to the result in order.
static inline __attribute__((always_inline)) void fused_rows(int wtype, const uint8_t *w, int64_t row_bytes,
                                                             int64_t i0, int64_t i1, int64_t k,
                                                             const tk_act_q8 *x, int64_t j0, int rn, float *y,
                                                             int64_t ldy) {
    int64_t nb = k / TK_QK, block_bytes = fused_block_bytes(wtype);
    uint8_t padded[2 * TK_Q8_0_BYTES]; // the odd last block, then a zero block
    for (int64_t i = i0; i < i1; i++) {
        const uint8_t *row = w + i * row_bytes;
        float total[FUSED_COLS];
        tk_prefetch_ahead(w, row_bytes, i0, i1, i, 1);
        for (int64_t b0 = 0; b0 < nb; b0 += SEG_BLOCKS) {
            int64_t nbs = nb - b0 < SEG_BLOCKS ? nb - b0 : SEG_BLOCKS, npairs = (nbs + 1) / 2;
            __m512 acc[FUSED_COLS], off[FUSED_COLS];
            for (int col = 0; col < rn; col++) acc[col] = off[col] = _mm512_setzero_ps();
            for (int64_t p0 = 0; p0 < npairs; p0 += 4) {
                int in_group = npairs - p0 < 4 ? (int)(npairs - p0) : 4;
                __m512 wo = _mm512_setzero_ps();
                for (int q = 0; q < in_group; q++) {
                    int64_t b = b0 + 2 * (p0 + q);
                    int pad = b + 1 == b0 + nbs;
                    const uint8_t *pair = row + b * block_bytes;
                    if (pad) {
                        memcpy(padded, pair, (size_t)block_bytes);
                        memset(padded + block_bytes, 0, (size_t)block_bytes);
                        pair = padded;
                    }
                    __m128 o = fused_step(wtype, pair, pad, b, x, j0, rn, acc);
                    switch (q) {
                    case 0: wo = _mm512_insertf32x4(wo, o, 0); break;
                    case 1: wo = _mm512_insertf32x4(wo, o, 1); break;
                    case 2: wo = _mm512_insertf32x4(wo, o, 2); break;
                    default: wo = _mm512_insertf32x4(wo, o, 3); break;
                    }
                }
                __mmask16 lanes = (__mmask16)((1u << (4 * in_group)) - 1);
                for (int col = 0; col < rn; col++) {
                    const float *sx = x->s + (j0 + col) * x->b_stride * 2 + 2 * (b0 + 2 * p0);
                    off[col] = _mm512_fmadd_ps(wo, _mm512_maskz_loadu_ps(lanes, sx), off[col]);
                }
            }
            for (int col = 0; col < rn; col++) {
                float v = _mm512_reduce_add_ps(acc[col]) + _mm512_reduce_add_ps(off[col]);
                total[col] = b0 > 0 ? total[col] + v : v;
            }
        }
        for (int col = 0; col < rn; col++) y[(j0 + col) * ldy + i] = total[col];
    }
}

#define TK_FUSED(type, TYPE)                                                                       \
    static void fused_##type(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k, \
                             const tk_act_q8 *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {   \
        int64_t j = j0;                                                                            \
        for (; j + 8 <= j1; j += 8) fused_rows(TYPE, w, row_bytes, i0, i1, k, x, j, 8, y, ldy);    \
        switch (j1 - j) {                                                                          \
        case 7: fused_rows(TYPE, w, row_bytes, i0, i1, k, x, j, 7, y, ldy); break;                 \
        case 6: fused_rows(TYPE, w, row_bytes, i0, i1, k, x, j, 6, y, ldy); break;                 \
        case 5: fused_rows(TYPE, w, row_bytes, i0, i1, k, x, j, 5, y, ldy); break;                 \
        case 4: fused_rows(TYPE, w, row_bytes, i0, i1, k, x, j, 4, y, ldy); break;                 \
        case 3: fused_rows(TYPE, w, row_bytes, i0, i1, k, x, j, 3, y, ldy); break;                 \
        case 2: fused_rows(TYPE, w, row_bytes, i0, i1, k, x, j, 2, y, ldy); break;                 \
        case 1: fused_rows(TYPE, w, row_bytes, i0, i1, k, x, j, 1, y, ldy); break;                 \
        default: break;                                                                            \
        }                                                                                          \
    }
TK_FUSED(q4_0, TK_Q4_0)
TK_FUSED(q4_1, TK_Q4_1)
TK_FUSED(q5_0, TK_Q5_0)
TK_FUSED(q5_1, TK_Q5_1)
TK_FUSED(q8_0, TK_Q8_0)

// Up to this many activation rows the fused kernels beat staging (m = 8: 100 vs 83 GFLOP/s on
// one Zen 4 thread; equal from m = 32 on; BENCHMARKS-kernels.md).
#ifndef TK_FUSED_MAX_ROWS
#define TK_FUSED_MAX_ROWS 16
#endif

#define TK_STAGED_KERNEL(type)                                                                     \
    static void kernel_##type(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k, \
                              const tk_act_q8 *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {  \
        staged_product(stage_##type, w, row_bytes, i0, i1, k, x, j0, j1, y, ldy);                  \
    }
TK_STAGED_KERNEL(q4_K)
TK_STAGED_KERNEL(q5_K)
TK_STAGED_KERNEL(q6_K)

// The 32-wide types: fused kernels for few activation rows, staging above.
#define TK_FUSED_OR_STAGED_KERNEL(type)                                                            \
    static void kernel_##type(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k, \
                              const tk_act_q8 *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {  \
        if (j1 - j0 <= TK_FUSED_MAX_ROWS) fused_##type(w, row_bytes, i0, i1, k, x, j0, j1, y, ldy);  \
        else staged_product(stage_##type, w, row_bytes, i0, i1, k, x, j0, j1, y, ldy);              \
    }
TK_FUSED_OR_STAGED_KERNEL(q4_0)
TK_FUSED_OR_STAGED_KERNEL(q4_1)
TK_FUSED_OR_STAGED_KERNEL(q5_0)
TK_FUSED_OR_STAGED_KERNEL(q5_1)
TK_FUSED_OR_STAGED_KERNEL(q8_0)

tk_q8_kernel tk_q8_kernel_avx512(int wtype) {
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

// Float weights: 16 products per FMA, weights converted in registers.
static inline __m512 load16_f32(const uint8_t *w) { return _mm512_loadu_ps((const float *)w); }
static inline __m512 load16_f16(const uint8_t *w) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)w)); }
static inline __m512 load16_bf16(const uint8_t *w) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)w));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

#define TK_FLOAT_KERNEL(name, load16, elem_bytes, scalar)                                          \
    static void name(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k,       \
                     const float *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {              \
        for (int64_t i = i0; i < i1; i++) {                                                        \
            const uint8_t *wr = w + i * row_bytes;                                                 \
            for (int64_t j = j0; j < j1; j++) {                                                    \
                const float *xr = x + j * k;                                                       \
                __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();                         \
                int64_t l = 0;                                                                     \
                for (; l + 32 <= k; l += 32) {                                                     \
                    a0 = _mm512_fmadd_ps(load16(wr + l * elem_bytes), _mm512_loadu_ps(xr + l), a0); \
                    a1 = _mm512_fmadd_ps(load16(wr + (l + 16) * elem_bytes), _mm512_loadu_ps(xr + l + 16), a1); \
                }                                                                                  \
                float acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));                           \
                for (; l < k; l++) acc += scalar(wr, l) * xr[l];                                   \
                y[j * ldy + i] = acc;                                                              \
            }                                                                                      \
        }                                                                                          \
    }

TK_FLOAT_KERNEL(kernel_f32, load16_f32, 4, tk_load_f32)
TK_FLOAT_KERNEL(kernel_f16, load16_f16, 2, tk_load_f16)
TK_FLOAT_KERNEL(kernel_bf16, load16_bf16, 2, tk_load_bf16)

tk_f32_kernel tk_f32_kernel_avx512(int wtype) {
    switch (wtype) {
    case TK_F32: return kernel_f32;
    case TK_F16: return kernel_f16;
    case TK_BF16: return kernel_bf16;
    default: return NULL;
    }
}

#pragma clang attribute pop
#endif
