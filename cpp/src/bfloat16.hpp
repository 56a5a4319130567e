// bfloat16 conversions, the one place they are written: quantizing weights (quantized.cpp) and
// the portable quantized products (kernels/quantized_matrix.cpp) both take them.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace eigengru::detail {

/// bfloat16 of f, rounded to nearest with ties to even; NaN stays NaN.
inline std::uint16_t to_bfloat16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if (std::isnan(f)) return static_cast<std::uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<std::uint16_t>(u >> 16);
}

/// The float that a bfloat16 bit pattern stands for, exactly.
inline float from_bfloat16(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace eigengru::detail
