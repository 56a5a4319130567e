# Links one kernel set's objects (INPUTS, a ;-list) into OUTPUT, with every symbol made local
# except KEEP, the set's table; see KernelSets.cmake. Run with cmake -P.
#
# ld -r --force-group-allocation dissolves the COMDAT groups (inline functions and template
# instantiations), which the final link would otherwise merge with other sets' copies by name.
# Fails if any other symbol stays global; with CHECK_STATIC_INIT, fails if the set has static initialisers: they would run the set's
# instructions when the library loads, whatever the CPU.
set(partial "${OUTPUT}.partial")
execute_process(COMMAND "${LINKER}" -r --force-group-allocation -o "${partial}" ${INPUTS}
                RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "${LINKER} -r failed for ${OUTPUT}")
endif()
execute_process(COMMAND "${OBJCOPY}" "--keep-global-symbol=${KEEP}" "${partial}" "${OUTPUT}"
                RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "${OBJCOPY} failed for ${OUTPUT}")
endif()
file(REMOVE "${partial}")
execute_process(COMMAND "${NM}" -g --defined-only "${OUTPUT}" OUTPUT_VARIABLE globals
                RESULT_VARIABLE failed)
string(REGEX REPLACE "[^\n]* [A-Za-z] ${KEEP}\n" "" others "${globals}")
if(failed OR NOT others STREQUAL "")
  file(REMOVE "${OUTPUT}")
  message(FATAL_ERROR "${OUTPUT} defines global symbols besides ${KEEP}, which other kernel sets "
                      "could collide with:\n${others}")
endif()
if(CHECK_STATIC_INIT AND READELF)
  execute_process(COMMAND "${READELF}" -S -W "${OUTPUT}" OUTPUT_VARIABLE sections)
  if(sections MATCHES "\\.init_array|\\.ctors")
    file(REMOVE "${OUTPUT}")
    message(FATAL_ERROR "${OUTPUT} has static initialisers, which would run its instructions "
                        "on any CPU when the library loads")
  endif()
endif()
