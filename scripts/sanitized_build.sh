# Sourced by scripts/test and scripts/fuzz_model_file, after setup.sh: configures their shared
# build under AddressSanitizer and UndefinedBehaviorSanitizer in build/cpp-sanitize, and leaves
# in runnable_sets the kernel sets that this CPU runs, the one chosen first.
# -O1 -g1: sanitized code at -O2 -g compiles several times slower and fills several times the
# disk, for the same findings. Only the kernel sets that this CPU runs: the others' tests would
# be skipped.
configure_sanitized_build() {
  local sets
  sets=$("$venv_python" -c 'from eigengru import _core; print(" ".join(_core.supported_isas()))')
  read -r -a runnable_sets <<< "$sets"
  cmake -S "$root" -B "$root/build/cpp-sanitize" -G Ninja -DEIGENGRU_SANITIZE=ON \
    -DEIGENGRU_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DEIGENGRU_ONLY_KERNEL_SETS="${sets// /;}" \
    -DEIGENGRU_TEST_FIXTURE="$root/build/fixture" \
    -DPython_EXECUTABLE="$venv_python" >/dev/null
}
