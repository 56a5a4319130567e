# Finds Eigen 3.4 from a package manager and fails with one clear message when it is absent.
# Looked for in order: PyPI's cmeel-eigen in the Python that builds us (its CMake config lives in
# site-packages/cmeel.prefix), then any system Eigen3 (Debian: libeigen3-dev).
set(_eigengru_eigen_hints "")
if(NOT Python_EXECUTABLE)
  find_package(Python QUIET COMPONENTS Interpreter)
endif()
if(Python_EXECUTABLE)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
            "import cmeel, os; print(os.path.join(os.path.dirname(os.path.dirname(cmeel.__file__)), 'cmeel.prefix'))"
    OUTPUT_VARIABLE _eigengru_cmeel_prefix
    OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _eigengru_cmeel_status
    ERROR_QUIET)
  if(_eigengru_cmeel_status EQUAL 0 AND EXISTS "${_eigengru_cmeel_prefix}")
    list(APPEND _eigengru_eigen_hints "${_eigengru_cmeel_prefix}")
  endif()
endif()

find_package(Eigen3 3.4 CONFIG QUIET HINTS ${_eigengru_eigen_hints})
if(NOT TARGET Eigen3::Eigen)
  message(FATAL_ERROR
    "eigengru needs Eigen 3.4, which was not found.\n"
    "Install it from a package manager, either of:\n"
    "  pip install cmeel-eigen        (into the Python that runs the build)\n"
    "  apt-get install libeigen3-dev  (Debian/Ubuntu)\n"
    "or point CMake at an Eigen3Config.cmake with -DEigen3_DIR=<dir>.")
endif()
message(STATUS "eigengru: Eigen ${Eigen3_VERSION} from ${Eigen3_DIR}")
