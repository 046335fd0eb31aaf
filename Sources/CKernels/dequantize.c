// Scalar dequantization of the ggml block formats Tandem supports. Each block stores a few
// scales in fp16 and small integers; w = d * q (symmetric) or w = d * q + m (with minimum).
#include "tk_dequantize.h"

#include <string.h>

enum { QK = 32, QK_K = 256, K_SCALE_BYTES = 12 };

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static float load_fp16(const uint8_t *p) { return tk_fp16_to_fp32(load_u16(p)); }

float tk_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    if (exponent == 0x1f) return bits_f32(sign | 0x7f800000u | (mantissa << 13));  // Inf, NaN
    if (exponent != 0) return bits_f32(sign | ((exponent + 112) << 23) | (mantissa << 13));
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    float magnitude = (float)mantissa * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
}

uint16_t tk_fp32_to_fp16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);  // Inf, NaN
    if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds beyond the largest half: Inf
    if (abs < 0x38800000u) {
        // Result is subnormal (or zero): round abs / 2^-24 to the nearest even integer.
        if (abs < 0x33000000u) return sign;  // below half the smallest subnormal
        uint32_t exponent = abs >> 23;
        uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - exponent;  // 14 .. 24 for this range
        uint32_t half = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t rounded = abs + 0xfff + ((abs >> 13) & 1);  // round to nearest even at bit 13
    return sign | (uint16_t)((rounded - (112u << 23)) >> 13);
}

float tk_bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t tk_fp32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);  // quiet NaN
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

int64_t tk_type_block_size(int type) {
    switch (type) {
    case TK_TYPE_F32: case TK_TYPE_F16: case TK_TYPE_BF16: return 1;
    case TK_TYPE_Q4_0: case TK_TYPE_Q4_1: case TK_TYPE_Q5_0: case TK_TYPE_Q5_1: case TK_TYPE_Q8_0: return QK;
    case TK_TYPE_Q4_K: case TK_TYPE_Q5_K: case TK_TYPE_Q6_K: return QK_K;
    default: return 0;
    }
}

int64_t tk_type_block_bytes(int type) {
    switch (type) {
    case TK_TYPE_F32: return 4;
    case TK_TYPE_F16: case TK_TYPE_BF16: return 2;
    case TK_TYPE_Q4_0: return 2 + QK / 2;
    case TK_TYPE_Q4_1: return 4 + QK / 2;
    case TK_TYPE_Q5_0: return 2 + 4 + QK / 2;
    case TK_TYPE_Q5_1: return 4 + 4 + QK / 2;
    case TK_TYPE_Q8_0: return 2 + QK;
    case TK_TYPE_Q4_K: return 4 + K_SCALE_BYTES + QK_K / 2;
    case TK_TYPE_Q5_K: return 4 + K_SCALE_BYTES + QK_K / 8 + QK_K / 2;
    case TK_TYPE_Q6_K: return QK_K / 2 + QK_K / 4 + QK_K / 16 + 2;
    default: return 0;
    }
}

// Q4_0: fp16 d, 16 bytes; low nibbles are weights 0-15, high nibbles 16-31; w = d * (q - 8).
static void q4_0_block(const uint8_t *b, float *y) {
    float d = load_fp16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * (float)((qs[j] & 0x0f) - 8);
        y[j + QK / 2] = d * (float)((qs[j] >> 4) - 8);
    }
}

// Q4_1: fp16 d, fp16 m, 16 bytes of nibbles; w = d * q + m.
static void q4_1_block(const uint8_t *b, float *y) {
    float d = load_fp16(b), m = load_fp16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = d * (float)(qs[j] & 0x0f) + m;
        y[j + QK / 2] = d * (float)(qs[j] >> 4) + m;
    }
}

// Q5_0 / Q5_1: the fifth bit of weight j is bit j of the 32-bit qh.
static void q5_block(const uint8_t *b, float *y, int with_min) {
    float d = load_fp16(b);
    float m = with_min ? load_fp16(b + 2) : 0.0f;
    const uint8_t *rest = b + (with_min ? 4 : 2);
    uint32_t qh = load_u32(rest);
    const uint8_t *qs = rest + 4;
    int offset = with_min ? 0 : 16;
    for (int j = 0; j < QK / 2; j++) {
        int lo = (qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
        int hi = (qs[j] >> 4) | (int)(((qh >> (j + QK / 2)) & 1) << 4);
        y[j] = d * (float)(lo - offset) + m;
        y[j + QK / 2] = d * (float)(hi - offset) + m;
    }
}

// Q8_0: fp16 d, 32 int8; w = d * q.
static void q8_0_block(const uint8_t *b, float *y) {
    float d = load_fp16(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < QK; j++) y[j] = d * (float)qs[j];
}

// K-quant sub-block j (0..7) scale and min: 6 bits each, packed in 12 bytes. Sub-blocks 0-3
// keep theirs in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 take the low or
// high nibble of bytes 8-11 plus the top 2 bits of bytes 0-3 / 4-7.
static void k_scale_min(int j, const uint8_t *q, uint8_t *scale, uint8_t *min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *min = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Q4_K / Q5_K: fp16 d, fp16 dmin, 12 scale bytes, [Q5_K: 32 bytes qh], 128 bytes of nibbles.
// Each 64 weights use 32 bytes: low nibbles for the first 32, high nibbles for the next 32;
// w = d * scale * q - dmin * min over 8 sub-blocks of 32.
static void qk_block(const uint8_t *b, float *y, int five_bit) {
    float d = load_fp16(b), dmin = load_fp16(b + 2);
    const uint8_t *scales = b + 4;
    const uint8_t *qh = b + 4 + K_SCALE_BYTES;
    const uint8_t *qs = qh + (five_bit ? QK_K / 8 : 0);
    for (int chunk = 0; chunk < QK_K / 64; chunk++) {
        uint8_t sc0, m0, sc1, m1;
        k_scale_min(2 * chunk, scales, &sc0, &m0);
        k_scale_min(2 * chunk + 1, scales, &sc1, &m1);
        float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
        int bit0 = 2 * chunk, bit1 = 2 * chunk + 1;  // high-bit positions in qh bytes
        for (int l = 0; l < 32; l++) {
            int lo = qs[l] & 0x0f, hi = qs[l] >> 4;
            if (five_bit) {
                lo |= ((qh[l] >> bit0) & 1) << 4;
                hi |= ((qh[l] >> bit1) & 1) << 4;
            }
            y[l] = d0 * (float)lo - min0;
            y[l + 32] = d1 * (float)hi - min1;
        }
        y += 64;
        qs += 32;
    }
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, fp16 d.
// Each half (128 weights) uses 64 low bytes and 32 high bytes: weight l + 32*k of the half
// takes nibble (k / 2) of ql[l + 32*(k % 2)] and bits 2k..2k+1 of qh[l]; q is biased by 32.
static void q6_k_block(const uint8_t *b, float *y) {
    const uint8_t *ql = b;
    const uint8_t *qh = b + QK_K / 2;
    const int8_t *sc = (const int8_t *)(b + QK_K / 2 + QK_K / 4);
    float d = load_fp16(b + QK_K / 2 + QK_K / 4 + QK_K / 16);
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            int s = l / 16;
            int q0 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q1 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[s] * (float)q0;
            y[l + 32] = d * (float)sc[s + 2] * (float)q1;
            y[l + 64] = d * (float)sc[s + 4] * (float)q2;
            y[l + 96] = d * (float)sc[s + 6] * (float)q3;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

int tk_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    int64_t block = tk_type_block_size(type);
    if (block == 0 || n < 0 || n % block != 0) return -1;
    const uint8_t *b = (const uint8_t *)src;
    int64_t bytes = tk_type_block_bytes(type);
    int64_t blocks = n / block;
    switch (type) {
    case TK_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return 0;
    case TK_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = load_fp16(b + 2 * i);
        return 0;
    case TK_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = tk_bf16_to_fp32(load_u16(b + 2 * i));
        return 0;
    default:
        break;
    }
    for (int64_t i = 0; i < blocks; i++, b += bytes, dst += block) {
        switch (type) {
        case TK_TYPE_Q4_0: q4_0_block(b, dst); break;
        case TK_TYPE_Q4_1: q4_1_block(b, dst); break;
        case TK_TYPE_Q5_0: q5_block(b, dst, 0); break;
        case TK_TYPE_Q5_1: q5_block(b, dst, 1); break;
        case TK_TYPE_Q8_0: q8_0_block(b, dst); break;
        case TK_TYPE_Q4_K: qk_block(b, dst, 0); break;
        case TK_TYPE_Q5_K: qk_block(b, dst, 1); break;
        case TK_TYPE_Q6_K: q6_k_block(b, dst); break;
        default: return -1;
        }
    }
    return 0;
}
