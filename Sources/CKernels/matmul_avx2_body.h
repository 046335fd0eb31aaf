// AVX2 + FMA kernels, compiled twice: by matmul_avx2.c (u8×s8 products with vpmaddubsw +
// vpmaddwd) and by matmul_avx2_vnni.c (AVX-VNNI vpdpbusd, one instruction for the same sum).
// Every weight is at most 6 bits unsigned (Q8_0 goes through the sign trick), so the 16-bit
// pair sums of vpmaddubsw never saturate and both variants give the same bits.
//
// Per tile of TILE_ROWS weight rows and a segment of SEG_BLOCKS blocks of 32 weights:
//  1. stage: a type-specific unpacker (unpack_block) writes the weights as bytes in element
//     order, a float scale per int32 lane (4 weights) and a float offset per 16 weights;
//  2. product: one micro-kernel multiplies the staged bytes with up to TILE_COLS activation
//     rows at once. The arithmetic of one (weight row, activation row) pair is the same
//     whatever the other rows of the tile are, so a row's result is independent of the batch.
// Staging is one pass over the weights, shared by all activation rows of the task; with at
// most TILE_COLS activation rows (decode) the micro-kernel unpacks in registers instead, with
// the same values and the same arithmetic.
#if !defined(TK_AVX2_VNNI)
#error "define TK_AVX2_VNNI (0 or 1) before including this file"
#endif
#include <immintrin.h>
#include <stdalign.h>

#include "tk_internal.h"

#if TK_AVX2_VNNI
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avxvnni"))), apply_to = function)
#define TK_NAME(name) name##_avx2_vnni
#else
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define TK_NAME(name) name##_avx2
#endif

#define TILE_ROWS 2    // weight rows per tile
#define TILE_COLS 4    // activation rows per micro-kernel call
#define SEG_BLOCKS 64  // blocks of 32 per staged segment; a multiple of 8 (K-quant super-blocks)
#define AI __attribute__((always_inline))

// For weight element e of staged block t of a row: w[e] = sc[8t + e/4] * q[32t + e] plus
// off[2t + e/16] / d_x(block), so the product with x = d_x * qx is
//   Σ_t Σ_lanes sc·d_x·(q·qx)  +  Σ off · (d_x Σ qx over the half block)   (= act->s).
// Q8_0 stages its signed bytes (the micro-kernel applies the sign trick) and Q4_0 / Q5_0 their
// unsigned ones (the micro-kernel subtracts the zero point in the integer sums), without offsets.
typedef struct {
    alignas(32) uint8_t q[TILE_ROWS][SEG_BLOCKS * 32];
    alignas(32) float sc[TILE_ROWS][SEG_BLOCKS * 8];
    alignas(32) float off[TILE_ROWS][SEG_BLOCKS * 2];
} tk_stage2;


static inline float f16(const uint8_t *p) { return _cvtsh_ss(tk_read_u16(p)); }

static inline uint32_t read_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline AI void k_scale_min(int j, const uint8_t *scales, int *sc, int *mn) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *mn = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *mn = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

// 16 bytes of nibbles -> elements 0–15 (low nibbles) then 16–31 (high nibbles).
static inline AI __m256i nibbles(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

// Byte l is 0x10 where bit l of the 32 bits at p is set (the fifth bits of Q5_0 / Q5_1).
static inline AI __m256i fifth_bits(const uint8_t *p) {
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)read_u32(p)), spread);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_and_si256(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

static inline AI void scalar_scale(__m256 *sc, float *off, float d, float offset) {
    *sc = _mm256_set1_ps(d);
    off[0] = offset;
    off[1] = offset;
}

// The fp16 value at p in all 8 lanes.
static inline AI __m256 f16_broadcast(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_set1_epi16((short)tk_read_u16(p)));
}

// The fp16 scale at the start of a 32-wide block in all 8 lanes: converted straight from
// memory (8 bytes, inside the block) and broadcast, one shuffle where f16_broadcast takes two.
static inline AI __m256 block_scale(const uint8_t *blk) {
    return _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)blk)));
}


// The fp16 scale d and min m at blk (Q4_1, Q5_1), both converted by one instruction.
static inline AI void scale_and_min(__m256 *sc, float *off, const uint8_t *blk) {
    __m128 dm = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)blk)); // from memory: no shuffle
    *sc = _mm256_broadcastss_ps(dm);
    _mm_storel_pi((__m64 *)off, _mm_movehdup_ps(dm));
}

// Block b (of 32 weights) of a weight row: its weights as bytes in element order (*q), the
// scale of each int32 lane (*sc) and the offsets of its two halves (off[0], off[1]), as
// tk_stage2 holds them. Staging and the fused kernels both use this, so they agree bit for bit.
static inline AI void unpack_block(int wtype, const uint8_t *row, int64_t b, __m256i *q, __m256 *sc, float *off) {
    switch (wtype) {
    case TK_Q4_0: {
        const uint8_t *blk = row + b * TK_Q4_0_BYTES;
        *q = nibbles(blk + 2);
        *sc = block_scale(blk); // no offsets: the zero point goes into the integer sums
        (void)off;
        break;
    }
    case TK_Q4_1: {
        const uint8_t *blk = row + b * TK_Q4_1_BYTES;
        *q = nibbles(blk + 4);
        scale_and_min(sc, off, blk);
        break;
    }
    case TK_Q5_0: {
        const uint8_t *blk = row + b * TK_Q5_0_BYTES;
        *q = _mm256_or_si256(nibbles(blk + 6), fifth_bits(blk + 2));
        *sc = block_scale(blk); // no offsets: the zero point goes into the integer sums
        break;
    }
    case TK_Q5_1: {
        const uint8_t *blk = row + b * TK_Q5_1_BYTES;
        *q = _mm256_or_si256(nibbles(blk + 8), fifth_bits(blk + 4));
        scale_and_min(sc, off, blk);
        break;
    }
    case TK_Q8_0: { // signed bytes; the micro-kernel applies the sign trick
        const uint8_t *blk = row + b * TK_Q8_0_BYTES;
        *q = _mm256_loadu_si256((const __m256i *)(blk + 2));
        *sc = block_scale(blk); // no offsets: the micro-kernel skips them for Q8_0
        break;
    }
    case TK_Q4_K:
    case TK_Q5_K: {
        // Sub-block j takes the low (j even) or high nibbles of qs[32 (j / 2)..]; Q5_K's fifth
        // bit of its element l is bit j of qh[l].
        int has_qh = wtype == TK_Q5_K, j = (int)(b & 7), s, m;
        const uint8_t *sb = row + (b >> 3) * (has_qh ? TK_Q5_K_BYTES : TK_Q4_K_BYTES);
        __m256i v = _mm256_loadu_si256((const __m256i *)(sb + (has_qh ? 48 : 16) + 32 * (j >> 1)));
        if (j & 1) v = _mm256_srli_epi16(v, 4);
        v = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
        if (has_qh) {
            __m256i h = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(sb + 16)), _mm_cvtsi32_si128(j));
            v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(1)), 4));
        }
        *q = v;
        k_scale_min(j, sb + 4, &s, &m);
        scalar_scale(sc, off, f16(sb) * (float)s, -f16(sb + 2) * (float)m);
        break;
    }
    default: { // Q6_K: in each half of 128, element 32g + l is the (g >> 1)-th nibble of
        // ql[32 (g & 1) + l] with bits 2g..2g+1 of qh[l] above it, minus 32; scale
        // sc[2g + l / 16] per 16 elements.
        const uint8_t *sb = row + (b >> 3) * TK_Q6_K_BYTES;
        int half = (int)((b >> 2) & 1), g = (int)(b & 3);
        __m256i l4 = _mm256_loadu_si256((const __m256i *)(sb + 64 * half + 32 * (g & 1)));
        if (g >> 1) l4 = _mm256_srli_epi16(l4, 4);
        l4 = _mm256_and_si256(l4, _mm256_set1_epi8(0x0F));
        __m256i qh = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * half)), _mm_cvtsi32_si128(2 * g));
        *q = _mm256_or_si256(l4, _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(3)), 4));
        const int8_t *scales = (const int8_t *)(sb + 192) + 8 * half + 2 * g;
        float d = f16(sb + 208), d0 = d * (float)scales[0], d1 = d * (float)scales[1];
        *sc = _mm256_setr_m128(_mm_set1_ps(d0), _mm_set1_ps(d1));
        off[0] = -32.0f * d0;
        off[1] = -32.0f * d1;
        break;
    }
    }
}

// K-quant super-blocks for the fused kernels: the scales and offsets of all 8 blocks decoded
// once (unpack_block decodes them per block), the same values: block j's scale is scl[j]
// (Q4_K, Q5_K) or scl[2j] and scl[2j + 1] for its two halves (Q6_K); its offsets go to
// off[2j] and off[2j + 1].
static inline AI void ksuper_scales(int wtype, const uint8_t *sb, float *scl, float *off) {
    if (wtype == TK_Q6_K) {
        const __m256 d = f16_broadcast(sb + 208);
        for (int h = 0; h < 2; h++) {
            __m128i s8 = _mm_loadl_epi64((const __m128i *)(sb + 192 + 8 * h));
            __m256 v = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(s8)));
            _mm256_store_ps(scl + 8 * h, v);
            _mm256_storeu_ps(off + 8 * h, _mm256_mul_ps(_mm256_set1_ps(-32.0f), v));
        }
        return;
    }
    // The 6-bit scales and mins of k_scale_min, four bytes at a time: j < 4 from bytes 0–7,
    // j >= 4 from the nibbles of bytes 8–11 with the top two bits of bytes 0–7 above them.
    uint32_t a = read_u32(sb + 4), b = read_u32(sb + 8), c = read_u32(sb + 12);
    uint32_t sc_lo = a & 0x3f3f3f3fu, mn_lo = b & 0x3f3f3f3fu;
    uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
    uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
    __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo)));
    __m256 mnf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)mn_hi, (int)mn_lo)));
    _mm256_store_ps(scl, _mm256_mul_ps(f16_broadcast(sb), scf));
    __m256 o = _mm256_mul_ps(_mm256_xor_ps(f16_broadcast(sb + 2), _mm256_set1_ps(-0.0f)), mnf);
    __m256 lo = _mm256_unpacklo_ps(o, o), hi = _mm256_unpackhi_ps(o, o);
    _mm256_storeu_ps(off, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(off + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

// Block j (0–7, a constant after unrolling) of the K-quant super-block sb: its weights as
// unpack_block gives them, and its lane scales from ksuper_scales' scl.
static inline AI void ksuper_block(int wtype, const uint8_t *sb, int j, const float *scl, __m256i *q, __m256 *sc) {
    if (wtype == TK_Q6_K) {
        int half = j >> 2, g = j & 3;
        __m256i l4 = _mm256_loadu_si256((const __m256i *)(sb + 64 * half + 32 * (g & 1)));
        if (g >> 1) l4 = _mm256_srli_epi16(l4, 4);
        l4 = _mm256_and_si256(l4, _mm256_set1_epi8(0x0F));
        __m256i qh = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * half)), 2 * g);
        *q = _mm256_or_si256(l4, _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(3)), 4));
        *sc = _mm256_setr_m128(_mm_broadcast_ss(scl + 2 * j), _mm_broadcast_ss(scl + 2 * j + 1));
        return;
    }
    int has_qh = wtype == TK_Q5_K;
    __m256i v = _mm256_loadu_si256((const __m256i *)(sb + (has_qh ? 48 : 16) + 32 * (j >> 1)));
    if (j & 1) v = _mm256_srli_epi16(v, 4);
    v = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
    if (has_qh) {
        __m256i h = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(sb + 16)), j);
        v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(1)), 4));
    }
    *q = v;
    *sc = _mm256_broadcast_ss(scl + j);
}

// The fused K-quant kernels multiply block t's int32 lane sums with prod[t] (Q4_K, Q5_K: 8
// values) or prod[2t] and prod[2t + 1] for its two halves (Q6_K: 16 values): the products of
// ksuper_scales' scl with the activation scales xd of the super-block's 8 blocks, formed here
// with one or two multiplies per super-block instead of one per block. They are the values the
// staged kernel forms per block (its lane scale times act->dexp), so the bits are the same.
static inline AI void ksuper_products(int wtype, const float *scl, const float *xd, float *prod) {
    __m256 d = _mm256_loadu_ps(xd);
    if (wtype == TK_Q6_K) {
        const __m256i lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
        _mm256_store_ps(prod, _mm256_mul_ps(_mm256_load_ps(scl), _mm256_permutevar8x32_ps(d, lo)));
        _mm256_store_ps(prod + 8, _mm256_mul_ps(_mm256_load_ps(scl + 8), _mm256_permutevar8x32_ps(d, hi)));
    } else {
        _mm256_store_ps(prod, _mm256_mul_ps(_mm256_load_ps(scl), d));
    }
}

static inline AI int is_kquant(int wtype) { return wtype == TK_Q4_K || wtype == TK_Q5_K || wtype == TK_Q6_K; }

static inline AI int64_t kquant_bytes(int wtype) {
    return wtype == TK_Q4_K ? TK_Q4_K_BYTES : wtype == TK_Q5_K ? TK_Q5_K_BYTES : TK_Q6_K_BYTES;
}

// Stages blocks [b0, b0 + nbs) of one weight row.
static inline AI void stage_row(int wtype, const uint8_t *row, int64_t b0, int64_t nbs, uint8_t *q, float *sc,
                                float *off) {
    for (int64_t t = 0; t < nbs; t++) {
        __m256i wq;
        __m256 wd;
        unpack_block(wtype, row, b0 + t, &wq, &wd, off + 2 * t);
        _mm256_store_si256((__m256i *)(q + 32 * t), wq);
        _mm256_store_ps(sc + 8 * t, wd);
    }
}

#if !TK_AVX2_VNNI
// Same result as tk_quantize_rows_portable (round half to even, scale amax / 127).
void tk_quantize_rows_avx2(const float *x, int64_t k, int64_t j0, int64_t j1, const tk_act_q8 *out) {
    int64_t nb = k / TK_QK;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
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
            __m256 v[4];
            for (int u = 0; u < 4; u++) v[u] = _mm256_loadu_ps(xr + 32 * b + 8 * u);
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                     _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            float amax = _mm_cvtss_f32(m4);
            float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
            __m256 vid = _mm256_set1_ps(id);
            __m256i qi[4];
            for (int u = 0; u < 4; u++) qi[u] = _mm256_cvtps_epi32(_mm256_mul_ps(v[u], vid));
            __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
            _mm256_storeu_si256((__m256i *)(q + 32 * b), _mm256_permutevar8x32_epi32(packed, order));
            int sums[2];
            for (int h = 0; h < 2; h++) {
                __m256i t = _mm256_add_epi32(qi[2 * h], qi[2 * h + 1]);
                __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
                t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, _MM_SHUFFLE(1, 0, 3, 2)));
                t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, _MM_SHUFFLE(2, 3, 0, 1)));
                sums[h] = _mm_cvtsi128_si32(t4);
            }
            d[b] = db;
            s[2 * b] = db * (float)sums[0];
            s[2 * b + 1] = db * (float)sums[1];
            _mm256_storeu_ps(dexp + 8 * b, _mm256_set1_ps(db));
        }
    }
}
#endif

static inline AI float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// Σ over 4 bytes per int32 lane of w (unsigned) × x (signed); with `is_signed` w is signed
// (Q8_0) and goes through |w| × sign(x, w).
static inline AI __m256i dot4(__m256i w, __m256i x, int is_signed) {
    if (is_signed) {
        x = _mm256_sign_epi8(x, w);
        w = _mm256_abs_epi8(w);
    }
#if TK_AVX2_VNNI
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, x);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
#endif
}

// Q4_0 and Q5_0 store unsigned weights q with a zero point z (8, 16): w = q − z. The kernels
// take it into the integer sums, Σ (q − z) x = Σ q x − z Σ x per int32 lane, instead of a float
// offset per half block: exact integers, so where the correction −z Σ x comes from (computed
// once per call, or per block) does not change a bit.
static inline AI int zero_point(int wtype) { return wtype == TK_Q4_0 ? 8 : wtype == TK_Q5_0 ? 16 : 0; }

// −c Σ x over each int32 lane of the activation bytes xv (c ≤ 128: exact in both variants).
static inline AI __m256i lane_correction(int c, __m256i xv) {
    __m256i cv = _mm256_set1_epi8((char)c);
#if TK_AVX2_VNNI
    __m256i sum = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), cv, xv);
#else
    __m256i sum = _mm256_madd_epi16(_mm256_maddubs_epi16(cv, xv), _mm256_set1_epi16(1));
#endif
    return _mm256_sub_epi32(_mm256_setzero_si256(), sum);
}

// Σ (q − z) x per int32 lane for unsigned q, with ncorr = lane_correction(z, x).
static inline AI __m256i dot_zero_point(__m256i w, __m256i x, __m256i ncorr) {
#if TK_AVX2_VNNI
    return _mm256_dpbusd_avx_epi32(ncorr, w, x);
#else
    return _mm256_add_epi32(dot4(w, x, 0), ncorr);
#endif
}

// Q8_0 with AVX-VNNI, whose vpdpbusd takes unsigned weights: w · x = (w + 128) · x − 128 Σ x
// per int32 lane, with w + 128 = w ^ 0x80 as unsigned bytes; the correction −128 Σ x (ncorr)
// depends only on the activation block, so the fused kernels compute it once per call for all
// weight rows, and a block costs an xor and a vpdpbusd instead of vpsignb, vpabsb and vpdpbusd.
// Exact integers: the same sums as dot4's sign trick.
static inline AI __m256i dot_q8_corrected(__m256i w, __m256i x, __m256i ncorr) {
#if TK_AVX2_VNNI
    return _mm256_dpbusd_avx_epi32(ncorr, _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80)), x);
#else
    (void)ncorr;
    return dot4(w, x, 1);
#endif
}

// ncorr[col * nb + b] = −c Σ x over each int32 lane of activation block b of row j + col.
static inline AI void lane_corrections(int c, const tk_act_q8 *x, int64_t j, int cn, int64_t nb, __m256i *ncorr) {
    for (int col = 0; col < cn; col++)
        for (int64_t b = 0; b < nb; b++)
            ncorr[col * nb + b] = lane_correction(c, _mm256_loadu_si256((const __m256i *)(x->q + (j + col) * x->q_stride + 32 * b)));
}

// v[r][col] = weight rows r · activation rows j + col over the segment's nbs blocks. Staged
// (rows == NULL): the weights come from st. Fused (rows given): each block is unpacked in
// registers (its offsets still go to st->off) and serves all cn activation rows; the
// arithmetic is the same either way.
// ncorr (fused Q4_0 / Q5_0, and fused Q8_0 with AVX-VNNI; else NULL): see lane_corrections;
// column col's block t of the segment is ncorr[col * nstride + t]. Without it Q4_0 / Q5_0
// compute the same corrections per block.
static inline AI void micro(int wtype, const uint8_t *const *rows, tk_stage2 *st, int rn, int cn, int64_t nbs,
                            const tk_act_q8 *x, int64_t j, int64_t b0, const __m256i *ncorr, int64_t nstride,
                            float v[TILE_ROWS][TILE_COLS]) {
    const int is_signed = wtype == TK_Q8_0, corrected = is_signed && ncorr != NULL, zp = zero_point(wtype);
    __m256 acc[TILE_ROWS][TILE_COLS];
    const int8_t *xq[TILE_COLS];
    const float *xd[TILE_COLS], *xs[TILE_COLS];
    for (int col = 0; col < cn; col++) {
        xq[col] = x->q + (j + col) * x->q_stride + b0 * 32;
        xd[col] = x->dexp + (j + col) * x->b_stride * 8 + b0 * 8;
        xs[col] = x->s + (j + col) * x->b_stride * 2 + b0 * 2;
        for (int r = 0; r < rn; r++) acc[r][col] = _mm256_setzero_ps();
    }
#define TK_BLOCK_PRODUCTS(t)                                                                       \
    for (int col = 0; col < cn; col++) {                                                           \
        __m256i xv = _mm256_loadu_si256((const __m256i *)(xq[col] + 32 * (t)));                    \
        __m256 xsc = _mm256_loadu_ps(xd[col] + 8 * (t));                                           \
        __m256i nc = _mm256_setzero_si256();                                                       \
        if (zp) nc = ncorr ? ncorr[col * nstride + (t)] : lane_correction(zp, xv);                 \
        for (int r = 0; r < rn; r++) {                                                             \
            __m256 dot = _mm256_cvtepi32_ps(corrected ? dot_q8_corrected(wq[r], xv, ncorr[col * nstride + (t)]) \
                                            : zp ? dot_zero_point(wq[r], xv, nc)                   \
                                                 : dot4(wq[r], xv, is_signed));                    \
            acc[r][col] = _mm256_fmadd_ps(dot, _mm256_mul_ps(wd[r], xsc), acc[r][col]);            \
        }                                                                                          \
    }
    if (rows && is_kquant(wtype)) {
        // Fused K-quants: scales decoded once per super-block (segments start on one), and
        // their products with the activation scales formed 8 or 16 at a time.
        for (int64_t t0 = 0; t0 < nbs; t0 += 8) {
            alignas(32) float scl[TILE_ROWS][16];
            alignas(32) float prod[TILE_ROWS][TILE_COLS][16];
            const uint8_t *sb[TILE_ROWS];
            for (int r = 0; r < rn; r++) {
                sb[r] = rows[r] + ((b0 + t0) >> 3) * kquant_bytes(wtype);
                ksuper_scales(wtype, sb[r], scl[r], st->off[r] + 2 * t0);
                for (int col = 0; col < cn; col++)
                    ksuper_products(wtype, scl[r], x->d + (j + col) * x->b_stride + b0 + t0, prod[r][col]);
            }
#pragma clang loop unroll(full)
            for (int jb = 0; jb < 8; jb++) {
                __m256i wq[TILE_ROWS];
                __m256 wd[TILE_ROWS]; // not used: prod holds the scales
                for (int r = 0; r < rn; r++) ksuper_block(wtype, sb[r], jb, scl[r], &wq[r], &wd[r]);
                for (int col = 0; col < cn; col++) {
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(xq[col] + 32 * (t0 + jb)));
                    for (int r = 0; r < rn; r++) {
                        const float *p = prod[r][col];
                        __m256 scale = wtype == TK_Q6_K
                                           ? _mm256_setr_m128(_mm_broadcast_ss(p + 2 * jb), _mm_broadcast_ss(p + 2 * jb + 1))
                                           : _mm256_broadcast_ss(p + jb);
                        __m256 dot = _mm256_cvtepi32_ps(dot4(wq[r], xv, is_signed));
                        acc[r][col] = _mm256_fmadd_ps(dot, scale, acc[r][col]);
                    }
                }
            }
        }
    } else {
        for (int64_t t = 0; t < nbs; t++) {
            __m256i wq[TILE_ROWS];
            __m256 wd[TILE_ROWS];
            for (int r = 0; r < rn; r++) {
                if (rows) {
                    unpack_block(wtype, rows[r], b0 + t, &wq[r], &wd[r], st->off[r] + 2 * t);
                } else {
                    wq[r] = _mm256_load_si256((const __m256i *)(st->q[r] + 32 * t));
                    wd[r] = _mm256_load_ps(st->sc[r] + 8 * t);
                }
            }
            TK_BLOCK_PRODUCTS(t)
        }
    }
#undef TK_BLOCK_PRODUCTS
    // Offsets: 8 half blocks (4 blocks) per step, the last step masked to the segment.
    int64_t nhalf = 2 * nbs;
    for (int col = 0; col < cn; col++) {
        for (int r = 0; r < rn; r++) {
            __m256 o = _mm256_setzero_ps();
            if (!is_signed && !zp) {
                int64_t e = 0;
                for (; e + 8 <= nhalf; e += 8)
                    o = _mm256_fmadd_ps(_mm256_load_ps(st->off[r] + e), _mm256_loadu_ps(xs[col] + e), o);
                if (e < nhalf) {
                    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(nhalf - e)), lane);
                    o = _mm256_fmadd_ps(_mm256_maskload_ps(st->off[r] + e, mask), _mm256_maskload_ps(xs[col] + e, mask), o);
                }
            }
            v[r][col] = hsum(acc[r][col]) + hsum(o);
        }
    }
}

// Up to this many activation rows the kernels unpack weights in registers (one micro-kernel
// call covers them all); above, a tile's weights are staged once and reused by every call.
#define TK_FUSED_MAX_ROWS TILE_COLS

// The product for one weight type (a constant after inlining): tiles of TILE_ROWS weight rows,
// segments of SEG_BLOCKS blocks, micro-kernel calls of up to TILE_COLS activation rows.
static inline AI void product(int wtype, const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k,
                              const tk_act_q8 *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {
    int64_t nb = k / TK_QK;
    int fused = j1 - j0 <= TK_FUSED_MAX_ROWS;
    tk_stage2 st;
    // Fused: the activation corrections of dot_zero_point (Q4_0, Q5_0) and, with AVX-VNNI, of
    // dot_q8_corrected, once for all weight rows (rows of up to TK_CORR_BLOCKS blocks; longer
    // ones compute them per block, or use the sign trick for Q8_0).
    enum { TK_CORR_BLOCKS = 128 };
    const int corr = zero_point(wtype) ? zero_point(wtype) : TK_AVX2_VNNI && wtype == TK_Q8_0 ? 128 : 0;
    alignas(32) __m256i ncorr_buf[corr ? TILE_COLS * TK_CORR_BLOCKS : 1];
    const __m256i *ncorr = NULL;
    if (corr && fused && nb <= TK_CORR_BLOCKS) {
        lane_corrections(corr, x, j0, (int)(j1 - j0), nb, ncorr_buf);
        ncorr = ncorr_buf;
    }
    for (int64_t i = i0; i < i1; i += TILE_ROWS) {
        int rows = i1 - i < TILE_ROWS ? (int)(i1 - i) : TILE_ROWS;
        const uint8_t *row_ptr[TILE_ROWS];
        for (int r = 0; r < TILE_ROWS; r++) row_ptr[r] = w + (i + (r < rows ? r : 0)) * row_bytes;
        tk_prefetch_ahead(w, row_bytes, i0, i1, i, rows);
        for (int64_t b0 = 0; b0 < nb; b0 += SEG_BLOCKS) {
            int64_t nbs = nb - b0 < SEG_BLOCKS ? nb - b0 : SEG_BLOCKS;
            if (!fused)
                for (int r = 0; r < rows; r++) stage_row(wtype, row_ptr[r], b0, nbs, st.q[r], st.sc[r], st.off[r]);
            for (int64_t j = j0; j < j1; j += TILE_COLS) {
                int cols = j1 - j < TILE_COLS ? (int)(j1 - j) : TILE_COLS;
                float v[TILE_ROWS][TILE_COLS];
                // Fused calls get the row pointers as a visible argument, so that each
                // (rows, cols) case compiles to a loop without the staged branch.
#define TK_CALL(rn, cn)                                                                            \
    if (fused && ncorr) micro(wtype, row_ptr, &st, rn, cn, nbs, x, j, b0, ncorr_buf + b0, nb, v);    \
    else if (fused) micro(wtype, row_ptr, &st, rn, cn, nbs, x, j, b0, NULL, 0, v);                 \
    else micro(wtype, NULL, &st, rn, cn, nbs, x, j, b0, NULL, 0, v)
                if (rows == 2) {
                    switch (cols) {
                    case 4: TK_CALL(2, 4); break;
                    case 3: TK_CALL(2, 3); break;
                    case 2: TK_CALL(2, 2); break;
                    default: TK_CALL(2, 1); break;
                    }
                } else {
                    switch (cols) {
                    case 4: TK_CALL(1, 4); break;
                    case 3: TK_CALL(1, 3); break;
                    case 2: TK_CALL(1, 2); break;
                    default: TK_CALL(1, 1); break;
                    }
                }
#undef TK_CALL
                for (int col = 0; col < cols; col++)
                    for (int r = 0; r < rows; r++) {
                        float *out = y + (j + col) * ldy + i + r;
                        *out = b0 > 0 ? *out + v[r][col] : v[r][col];
                    }
            }
        }
    }
}

#define TK_KERNEL(type, TYPE)                                                                      \
    static void kernel_##type(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k, \
                              const tk_act_q8 *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {  \
        product(TYPE, w, row_bytes, i0, i1, k, x, j0, j1, y, ldy);                                 \
    }
TK_KERNEL(q4_0, TK_Q4_0)
TK_KERNEL(q4_1, TK_Q4_1)
TK_KERNEL(q5_0, TK_Q5_0)
TK_KERNEL(q5_1, TK_Q5_1)
TK_KERNEL(q8_0, TK_Q8_0)
TK_KERNEL(q4_K, TK_Q4_K)
TK_KERNEL(q5_K, TK_Q5_K)
TK_KERNEL(q6_K, TK_Q6_K)

tk_q8_kernel TK_NAME(tk_q8_kernel)(int wtype) {
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

#if !TK_AVX2_VNNI
// Float weights: 8 products per FMA, four accumulators, weights converted in registers.
static inline AI __m256 load8_f32(const uint8_t *w) { return _mm256_loadu_ps((const float *)w); }
static inline AI __m256 load8_f16(const uint8_t *w) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w)); }
static inline AI __m256 load8_bf16(const uint8_t *w) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)w));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

#define TK_FLOAT_KERNEL(name, load8, elem_bytes, scalar)                                           \
    static void name(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t k,       \
                     const float *x, int64_t j0, int64_t j1, float *y, int64_t ldy) {              \
        for (int64_t i = i0; i < i1; i++) {                                                        \
            const uint8_t *wr = w + i * row_bytes;                                                 \
            for (int64_t j = j0; j < j1; j++) {                                                    \
                const float *xr = x + j * k;                                                       \
                __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
                int64_t l = 0;                                                                     \
                for (; l + 32 <= k; l += 32)                                                       \
                    for (int u = 0; u < 4; u++)                                                    \
                        a[u] = _mm256_fmadd_ps(load8(wr + (l + 8 * u) * elem_bytes), _mm256_loadu_ps(xr + l + 8 * u), a[u]); \
                float acc = hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]))); \
                for (; l < k; l++) acc += scalar(wr, l) * xr[l];                                   \
                y[j * ldy + i] = acc;                                                              \
            }                                                                                      \
        }                                                                                          \
    }

TK_FLOAT_KERNEL(kernel_f32, load8_f32, 4, tk_load_f32)
TK_FLOAT_KERNEL(kernel_f16, load8_f16, 2, tk_load_f16)
TK_FLOAT_KERNEL(kernel_bf16, load8_bf16, 2, tk_load_bf16)

tk_f32_kernel tk_f32_kernel_avx2(int wtype) {
    switch (wtype) {
    case TK_F32: return kernel_f32;
    case TK_F16: return kernel_f16;
    case TK_BF16: return kernel_bf16;
    default: return NULL;
    }
}
#endif

#undef AI
#pragma clang attribute pop
