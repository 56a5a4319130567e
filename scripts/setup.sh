# Sourced by scripts/demo and scripts/test: makes .venv and installs eigengru into it from this
# checkout, building the C++ extension (incrementally: the build folder build/ is kept).
# Usage: source scripts/setup.sh [EXTRAS]      e.g. EXTRAS=test
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "eigengru setup: no '$python' found; install Python 3.9 or newer (or set PYTHON=...)" >&2
  exit 1
fi
if ! command -v "${CXX:-c++}" >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
  echo "eigengru setup: no C++ compiler found; install one (Debian: apt-get install g++)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "eigengru setup: creating .venv"
  "$python" -m venv .venv
fi
venv_python="$root/.venv/bin/python"
# pip's own exit status decides (pipefail): a failed install stops the setup, rather than leaving
# an old build importable or the test extras missing (their tests would then be skipped).
pip() { "$venv_python" -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }

echo "eigengru setup: installing build requirements and building eigengru (first build takes a minute)"
pip install "scikit-build-core>=0.10" "pybind11>=2.12" "cmeel-eigen>=3.4" cmake ninja "numpy>=1.22"
extras=${1:-}
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
# No build isolation, so that the build folder and its compiled objects are reused between runs.
# With EIGENGRU_SETUP_CPP_TESTS=1 (scripts/test) the same build also makes the C++ tests, from
# the kernels compiled for the extension; their fixture is made in build/fixture afterwards.
build=(-C build-dir=build/python)
if [ -n "${EIGENGRU_SETUP_CPP_TESTS:-}" ]; then
  build+=(-C cmake.define.EIGENGRU_BUILD_TESTS=ON
          -C "cmake.define.EIGENGRU_TEST_FIXTURE=$root/build/fixture")
else
  build+=(-C cmake.define.EIGENGRU_BUILD_TESTS=OFF)
fi
pip install --no-build-isolation "${build[@]}" "$spec"
"$venv_python" -c "import eigengru" || { echo "eigengru setup: the build failed (see above)" >&2; exit 1; }
