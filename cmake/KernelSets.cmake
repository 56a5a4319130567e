# The kernel sets: cpp/src/kernels compiled once per instruction set, each into one object.
#
# Sets: avx512 (x86-64-v4), avx2 (x86-64-v3) and baseline (the compiler's default target) on
# x86-64 with GCC or Clang and GNU binutils; baseline alone elsewhere; native alone with
# EIGENGRU_NATIVE; EIGENGRU_ONLY_KERNEL_SETS keeps some of them. Each set is compiled in its own
# namespace (eigengru::<set>) with Eigen renamed (Eigen_<set>), then linked into one relocatable
# object in which every symbol but the set's table (eigengru_kernel_set_<set>) is made local. The
# standard library's templates instantiated in a set (std::vector, std::mt19937_64, ...) thus
# stay that set's own: otherwise the final link would keep one copy of each, possibly compiled
# for AVX-512, for every set.
#
# Sets: EIGENGRU_KERNEL_SETS (names, fastest first), EIGENGRU_KERNEL_SET_OBJECTS (the objects),
# EIGENGRU_KERNEL_SET_TARGETS (their object libraries, which the library must depend on: a
# file-level dependency on another target's objects orders nothing under the Makefile
# generators), EIGENGRU_WARNING_FLAGS.

set(EIGENGRU_WARNING_FLAGS
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic>
  # GCC 12 reports its own AVX-512 intrinsics (inlined from Eigen's vectorised tanh) as uninitialised.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized -Wno-uninitialized>
  $<$<AND:$<BOOL:${EIGENGRU_WARNINGS_AS_ERRORS}>,$<CXX_COMPILER_ID:GNU,Clang>>:-Werror>)

set(_eigengru_kernel_sources
  cpp/src/kernels/entry.cpp
  cpp/src/kernels/forward_weights.cpp
  cpp/src/kernels/gru_cell.cpp
  cpp/src/kernels/layer_backward.cpp
  cpp/src/kernels/layer_forward.cpp
  cpp/src/kernels/layer_forward_units.cpp
  cpp/src/kernels/packed_matrix.cpp
  cpp/src/kernels/quantized_layer.cpp
  cpp/src/kernels/quantized_matrix.cpp
  cpp/src/kernels/quantized_row_step.cpp
  cpp/src/kernels/quantized_rows.cpp
  cpp/src/kernels/quantized_stack.cpp
  cpp/src/kernels/stack.cpp
  cpp/src/kernels/stack_step.cpp
  cpp/src/kernels/stream.cpp
  cpp/src/kernels/transposed_product.cpp)

set(_eigengru_x86_64 FALSE)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(_eigengru_x86_64 TRUE)
endif()
set(_eigengru_can_localize FALSE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang" AND CMAKE_SYSTEM_NAME STREQUAL "Linux"
   AND CMAKE_LINKER AND CMAKE_OBJCOPY)
  set(_eigengru_can_localize TRUE)
endif()

if(EIGENGRU_NATIVE)
  set(EIGENGRU_KERNEL_SETS native)
  set(_eigengru_flags_native -march=native)
elseif(_eigengru_x86_64 AND _eigengru_can_localize)
  set(EIGENGRU_KERNEL_SETS avx512 avx2 baseline)
  # Generic tuning splits unaligned 256-bit loads and stores (Eigen's among them) into 128-bit
  # halves, which every AVX2 CPU would take whole.
  set(_eigengru_whole_256 -mno-avx256-split-unaligned-load -mno-avx256-split-unaligned-store)
  set(_eigengru_flags_avx512 -march=x86-64-v4 -mtune=generic ${_eigengru_whole_256})
  set(_eigengru_flags_avx2 -march=x86-64-v3 -mtune=generic ${_eigengru_whole_256})
  set(_eigengru_flags_baseline)
else()
  set(EIGENGRU_KERNEL_SETS baseline)
  set(_eigengru_flags_baseline)
endif()

# A build that runs on one machine only (the sanitized tests') may leave out the sets that this
# machine's CPU does not run: their tests would be skipped anyway.
set(EIGENGRU_ONLY_KERNEL_SETS "" CACHE STRING
    "Compile only these of the kernel sets (a ;-list; empty: all of them)")
if(EIGENGRU_ONLY_KERNEL_SETS)
  foreach(set IN LISTS EIGENGRU_ONLY_KERNEL_SETS)
    if(NOT set IN_LIST EIGENGRU_KERNEL_SETS)
      message(FATAL_ERROR "EIGENGRU_ONLY_KERNEL_SETS: '${set}' is not one of this build's kernel "
                          "sets (${EIGENGRU_KERNEL_SETS})")
    endif()
  endforeach()
  set(_eigengru_kept)
  foreach(set IN LISTS EIGENGRU_KERNEL_SETS)  # in their order, fastest first
    if(set IN_LIST EIGENGRU_ONLY_KERNEL_SETS)
      list(APPEND _eigengru_kept ${set})
    endif()
  endforeach()
  set(EIGENGRU_KERNEL_SETS ${_eigengru_kept})
endif()

set(EIGENGRU_KERNEL_SET_OBJECTS)
set(EIGENGRU_KERNEL_SET_TARGETS)
foreach(set IN LISTS EIGENGRU_KERNEL_SETS)
  set(target eigengru_kernels_${set})
  add_library(${target} OBJECT ${_eigengru_kernel_sources})
  target_compile_definitions(${target} PRIVATE EIGENGRU_KERNEL_SET=${set} Eigen=Eigen_${set})
  # GCC gives the static variables of inline functions "unique" binding, which objcopy cannot
  # make local: plain weak symbols instead.
  target_compile_options(${target} PRIVATE ${_eigengru_flags_${set}} ${EIGENGRU_WARNING_FLAGS}
                                           $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include
                                                ${CMAKE_CURRENT_SOURCE_DIR}/cpp/src)
  target_link_libraries(${target} PRIVATE Eigen3::Eigen OpenMP::OpenMP_CXX)
  list(APPEND EIGENGRU_KERNEL_SET_TARGETS ${target})

  if(_eigengru_can_localize)
    set(object ${CMAKE_CURRENT_BINARY_DIR}/kernels_${set}${CMAKE_CXX_OUTPUT_EXTENSION})
    set(check_static_init TRUE)
    if(EIGENGRU_SANITIZE)
      set(check_static_init FALSE)  # the sanitizers register every object's globals at load
    endif()
    add_custom_command(
      OUTPUT ${object}
      COMMAND ${CMAKE_COMMAND} -DLINKER=${CMAKE_LINKER} -DOBJCOPY=${CMAKE_OBJCOPY}
              -DREADELF=${CMAKE_READELF} -DNM=${CMAKE_NM} -DOUTPUT=${object}
              -DKEEP=eigengru_kernel_set_${set} -DCHECK_STATIC_INIT=${check_static_init}
              "-DINPUTS=$<TARGET_OBJECTS:${target}>"
              -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/LinkKernelSet.cmake
      DEPENDS $<TARGET_OBJECTS:${target}> ${CMAKE_CURRENT_SOURCE_DIR}/cmake/LinkKernelSet.cmake
      COMMENT "Linking kernel set ${set} into one object"
      VERBATIM)
    list(APPEND EIGENGRU_KERNEL_SET_OBJECTS ${object})
  else()
    # One set only (see above): nothing of it can collide with another.
    list(APPEND EIGENGRU_KERNEL_SET_OBJECTS $<TARGET_OBJECTS:${target}>)
  endif()
endforeach()
