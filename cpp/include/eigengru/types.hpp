// The index type of every size and offset, and a helper for nullable scalar pointers.
#pragma once

#include <cstddef>
#include <type_traits>

namespace eigengru {

/// Sizes and offsets: signed, pointer-sized (Eigen's default index type, the same type).
using Index = std::ptrdiff_t;

/// Scalar in a position that does not take part in template argument deduction, so that a
/// nullable pointer argument may be passed as nullptr: the scalar type comes from the weights.
template <typename Scalar>
using NoDeduce = typename std::enable_if<true, Scalar>::type;

}  // namespace eigengru
