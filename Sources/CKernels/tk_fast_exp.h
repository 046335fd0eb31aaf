// A branch-free expf that compilers vectorize (libm's is a call per element): 2^n · p(r)
// with r = x − n·ln2, |r| ≤ ln2/2, p the degree-6 Taylor polynomial; relative error ≈ 2e-7.
// Inputs are clamped to [-87, 88] (results 1.6e-38 … 1.7e38).
#pragma once
#include <stdint.h>
#include <string.h>

static inline float tk_fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
