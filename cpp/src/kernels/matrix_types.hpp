// Row-major Eigen matrices and views over caller memory: the layout of NumPy and PyTorch arrays.
#pragma once

#include <Eigen/Core>

#include "eigengru/types.hpp"
#include "target.hpp"

namespace eigengru::EIGENGRU_KERNEL_SET {

template <typename Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// A row-major matrix view whose rows may be further apart than its width (a column block).
template <typename Scalar>
using ConstMatrixMap = Eigen::Map<const RowMatrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <typename Scalar>
using ArrayMap = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;

template <typename Scalar>
using ConstArrayMap = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;

}  // namespace eigengru::EIGENGRU_KERNEL_SET
