// Flush denormal floats to zero for the duration of a scope, on the calling thread.
//
// Trained GRUs drive gate pre-activations far into saturation, where sigmoid and tanh
// derivatives and their products fall into the denormal range; on x86 every arithmetic
// instruction touching a denormal takes a slow microcode path (training slowed by half in the
// adding task). Denormals are below 1.2e-38 in float: flushing them changes results far below
// float tolerance. The previous mode is restored, so callers' own code is unaffected.
#pragma once

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace eigengru::EIGENGRU_KERNEL_SET::detail {

class FlushDenormals {
 public:
#if defined(__SSE__) || defined(_M_X64)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
  unsigned saved_;
#endif
};

}  // namespace eigengru::EIGENGRU_KERNEL_SET::detail
