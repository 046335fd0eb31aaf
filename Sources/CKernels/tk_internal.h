// Internal interfaces of the matrix-product kernels (not part of the module's public headers).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tk_dequantize.h" // type ids, block geometry, fp16/bf16 conversion

// Short names for the ggml type ids the kernels handle.
enum {
    TK_F32 = TK_TYPE_F32, TK_F16 = TK_TYPE_F16, TK_BF16 = TK_TYPE_BF16,
    TK_Q4_0 = TK_TYPE_Q4_0, TK_Q4_1 = TK_TYPE_Q4_1, TK_Q5_0 = TK_TYPE_Q5_0, TK_Q5_1 = TK_TYPE_Q5_1,
    TK_Q8_0 = TK_TYPE_Q8_0, TK_Q4_K = TK_TYPE_Q4_K, TK_Q5_K = TK_TYPE_Q5_K, TK_Q6_K = TK_TYPE_Q6_K,
};

// Block sizes in bytes of the GGUF block layouts (ggml-common.h), as constants for the kernels.
#define TK_QK 32     // weights per block of the 32-wide types
#define TK_QK_K 256  // weights per K-quant super-block
#define TK_Q4_0_BYTES 18  // f16 d, 16 bytes of nibbles
#define TK_Q4_1_BYTES 20  // f16 d, f16 m, 16 bytes of nibbles
#define TK_Q5_0_BYTES 22  // f16 d, 4 bytes high bits, 16 bytes of nibbles
#define TK_Q5_1_BYTES 24  // f16 d, f16 m, 4 bytes high bits, 16 bytes of nibbles
#define TK_Q8_0_BYTES 34  // f16 d, 32 int8
#define TK_Q4_K_BYTES 144 // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes nibbles
#define TK_Q5_K_BYTES 176 // as Q4_K plus 32 bytes of high bits before the nibbles
#define TK_Q6_K_BYTES 210 // 128 low nibbles, 64 high 2-bits, 16 int8 scales, f16 d

// Activations quantized to 8 bits per block of 32 (one row of X per row here):
// x ≈ d[b] * q[32b + l]; s[2b + h] = d[b] * Σ q over half h (16 values) of block b (weight
// offsets like Q4_0's -8 are applied through these sums); dexp holds d[b] repeated 8 times
// (the layout SIMD kernels multiply int32 lane sums with). Rows are padded with zero blocks
// to an even block count so kernels may work on pairs of blocks.
typedef struct {
    int8_t *q;      // row stride q_stride bytes
    float *d;       // row stride b_stride floats
    float *s;       // row stride 2 * b_stride floats
    float *dexp;    // row stride 8 * b_stride floats
    int64_t q_stride;
    int64_t b_stride;
} tk_act_q8;

// Computes y[j * ldy + i] for weight rows i in [i0, i1) and activation rows j in [j0, j1).
typedef void (*tk_q8_kernel)(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1,
                             int64_t k, const tk_act_q8 *x, int64_t j0, int64_t j1,
                             float *y, int64_t ldy);
typedef void (*tk_f32_kernel)(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1,
                              int64_t k, const float *x, int64_t j0, int64_t j1,
                              float *y, int64_t ldy);
typedef void (*tk_quantize_rows_fn)(const float *x, int64_t k, int64_t j0, int64_t j1,
                                    const tk_act_q8 *out);

void tk_quantize_rows_portable(const float *x, int64_t k, int64_t j0, int64_t j1, const tk_act_q8 *out);
tk_q8_kernel tk_q8_kernel_portable(int wtype);
tk_f32_kernel tk_f32_kernel_portable(int wtype);

#if defined(__x86_64__)
void tk_quantize_rows_avx512(const float *x, int64_t k, int64_t j0, int64_t j1, const tk_act_q8 *out);
tk_q8_kernel tk_q8_kernel_avx512(int wtype);   // NULL where only the portable one exists
tk_f32_kernel tk_f32_kernel_avx512(int wtype);
void tk_quantize_rows_avx2(const float *x, int64_t k, int64_t j0, int64_t j1, const tk_act_q8 *out);
tk_q8_kernel tk_q8_kernel_avx2(int wtype);      // vpmaddubsw + vpmaddwd products
tk_q8_kernel tk_q8_kernel_avx2_vnni(int wtype); // AVX-VNNI products, the same results
tk_f32_kernel tk_f32_kernel_avx2(int wtype);
#endif

// The instruction-set families the kernels exist for; a pool's backend belongs to one, and
// ops.c and attention.c run the variant compiled for it.
enum { TK_PATH_PORTABLE = 0, TK_PATH_AVX2 = 1, TK_PATH_AVX512 = 2 };
struct tk_pool;
int tk_pool_path(struct tk_pool *pool); // pool may be NULL: the process-wide choice

// Target attributes of the SIMD families. TK_PATH_VARIANTS(name, params, args) compiles the
// static inline function name##_body (defined after it) once per family, as name##_avx512,
// name##_avx2 and name##_portable; TK_PATH_DISPATCH(path, name, args) calls the one for a path.
#define TK_TARGET_AVX512 "avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,f16c,fma"
#define TK_TARGET_AVX2 "avx2,f16c,fma"
#if defined(__x86_64__)
#define TK_PATH_VARIANTS(name, params, args)                                                        \
    static inline __attribute__((always_inline)) void name##_body params;                         \
    __attribute__((target(TK_TARGET_AVX512))) static void name##_avx512 params { name##_body args; } \
    __attribute__((target(TK_TARGET_AVX2))) static void name##_avx2 params { name##_body args; }   \
    static void name##_portable params { name##_body args; }
#define TK_PATH_DISPATCH(path, name, args)                                                          \
    switch (path) {                                                                                 \
    case TK_PATH_AVX512: name##_avx512 args; break;                                                \
    case TK_PATH_AVX2: name##_avx2 args; break;                                                    \
    default: name##_portable args; break;                                                          \
    }
#else
#define TK_PATH_VARIANTS(name, params, args)                                                        \
    static inline __attribute__((always_inline)) void name##_body params;                         \
    static void name##_portable params { name##_body args; }
#define TK_PATH_DISPATCH(path, name, args) ((void)(path), name##_portable args)
#endif

// Scratch memory owned by the pool, reused across calls (the pool runs one job at a time).
struct tk_pool;
void *tk_pool_scratch(struct tk_pool *pool, size_t size);
// Runs fn(ctx, ith, nth) on the caller and on whichever workers join before the caller is
// done with it; fn must claim its work dynamically. Returns when every thread that joined left.
void tk_pool_share(struct tk_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx);
// The backend a pool uses; NULL means the process-wide choice (tk_select_path, matmul.c).
struct tk_backend;
const struct tk_backend **tk_pool_backend_slot(struct tk_pool *pool);

// Decode streams every weight matrix once from L3 or memory, and the hardware prefetchers alone
// leave a single core waiting on most lines (a 576 x 576 Q4_1 product, AVX2, one activation
// row: 45 µs with the weights in L3, 20 µs in L2). So the kernels ask for the lines
// TK_PREFETCH_BYTES ahead of the rows they are about to read. Weight rows are contiguous.
#define TK_PREFETCH_BYTES 4096

// Called before reading weight rows [i, i + n) of a task over rows [i0, i1): prefetches the
// lines TK_PREFETCH_BYTES past those rows, and at the task's first rows also everything up to
// there; never past row i1.
static inline void tk_prefetch_ahead(const uint8_t *w, int64_t row_bytes, int64_t i0, int64_t i1, int64_t i, int64_t n) {
    const uint8_t *from = w + i * row_bytes + (i == i0 ? 0 : TK_PREFETCH_BYTES);
    const uint8_t *to = w + (i + n) * row_bytes + TK_PREFETCH_BYTES, *end = w + i1 * row_bytes;
    for (to = to < end ? to : end; from < to; from += 64) __builtin_prefetch(from, 0, 3);
}

static inline uint16_t tk_read_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline float tk_read_f16(const uint8_t *p) { return tk_fp16_to_fp32(tk_read_u16(p)); }

/* Element l of a float-typed weight row (F32, F16, BF16), for the kernels' scalar paths. */
static inline float tk_load_f32(const uint8_t *w, int64_t l) {
    float f;
    memcpy(&f, w + 4 * l, 4);
    return f;
}
static inline float tk_load_f16(const uint8_t *w, int64_t l) { return tk_read_f16(w + 2 * l); }
static inline float tk_load_bf16(const uint8_t *w, int64_t l) { return tk_bf16_to_fp32(tk_read_u16(w + 2 * l)); }
