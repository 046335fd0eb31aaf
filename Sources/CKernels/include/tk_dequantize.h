// Dequantization of ggml block formats to float32: the reference (portable, scalar) path.
// Types are numbered as ggml's enum ggml_type. Block layouts: llama.cpp ggml-common.h.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    TK_TYPE_F32 = 0, TK_TYPE_F16 = 1, TK_TYPE_Q4_0 = 2, TK_TYPE_Q4_1 = 3,
    TK_TYPE_Q5_0 = 6, TK_TYPE_Q5_1 = 7, TK_TYPE_Q8_0 = 8,
    TK_TYPE_Q4_K = 12, TK_TYPE_Q5_K = 13, TK_TYPE_Q6_K = 14, TK_TYPE_BF16 = 30,
};

/// Elements per block of a supported type; 0 when the type is not supported here.
int64_t tk_type_block_size(int ggml_type);
/// Bytes per block of a supported type; 0 when the type is not supported here.
int64_t tk_type_block_bytes(int ggml_type);

/// Writes n floats decoded from src (n / block size whole blocks). Returns 0, or -1 when
/// the type is not supported or n is not a multiple of its block size.
int tk_dequantize_row(int ggml_type, const void *src, float *dst, int64_t n);

/// IEEE half precision <-> single precision (round to nearest even; NaN and Inf kept).
float tk_fp16_to_fp32(uint16_t h);
uint16_t tk_fp32_to_fp16(float f);
/// bfloat16 <-> float (round to nearest even; NaN kept quiet).
float tk_bf16_to_fp32(uint16_t h);
uint16_t tk_fp32_to_bf16(float f);

#ifdef __cplusplus
}
#endif
