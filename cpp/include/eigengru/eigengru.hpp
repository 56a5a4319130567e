// The whole public C++ API of eigengru.
#pragma once

#include "eigengru/gru_cell.hpp"
#include "eigengru/isa.hpp"
#include "eigengru/layer.hpp"
#include "eigengru/model_file.hpp"
#include "eigengru/nonlinearities.hpp"
#include "eigengru/path_counts.hpp"
#include "eigengru/quantized.hpp"
#include "eigengru/sequence.hpp"
#include "eigengru/stack.hpp"
#include "eigengru/stack_spec.hpp"
#include "eigengru/stack_step.hpp"
#include "eigengru/stream.hpp"
#include "eigengru/threads.hpp"
#include "eigengru/training_cache.hpp"
#include "eigengru/types.hpp"
#include "eigengru/weights.hpp"
