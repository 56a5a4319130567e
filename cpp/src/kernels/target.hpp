// The kernel set being compiled: its namespace and the shape of its vector registers. Every
// file of this folder is compiled once per instruction set, with EIGENGRU_KERNEL_SET naming the
// set (avx512, avx2, baseline or native) and Eigen renamed to match, so that no two sets share
// a symbol.
#pragma once

#include "eigengru/types.hpp"

#ifndef EIGENGRU_KERNEL_SET
#error "cpp/src/kernels is compiled through the kernel-set targets of CMakeLists.txt"
#endif

// Bytes in one vector register: what the kernels' vector types and panel widths are made of.
#if defined(__AVX512F__)
#define EIGENGRU_VECTOR_BYTES 64
#elif defined(__AVX__)
#define EIGENGRU_VECTOR_BYTES 32
#else
#define EIGENGRU_VECTOR_BYTES 16
#endif

namespace eigengru::EIGENGRU_KERNEL_SET {

constexpr Index kVectorBytes = EIGENGRU_VECTOR_BYTES;

namespace detail {
/// Scalars in one vector register.
template <typename Scalar>
constexpr Index kLanes = kVectorBytes / static_cast<Index>(sizeof(Scalar));

/// Columns in a panel of a packed matrix, the product kernel's width: two vectors (32 floats
/// or 16 doubles with AVX-512).
template <typename Scalar>
constexpr Index kPanelWidth = 2 * kLanes<Scalar>;
}  // namespace detail

/// Vector registers the compiler may allocate: 32 with AVX-512 (and on AArch64), else 16.
#if defined(__AVX512F__) || defined(__aarch64__)
constexpr int kVectorRegisters = 32;
#else
constexpr int kVectorRegisters = 16;
#endif

}  // namespace eigengru::EIGENGRU_KERNEL_SET
