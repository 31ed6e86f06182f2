# loom_set_warnings(target): the project's warning flags; -Werror with LOOM_WERROR=ON (CI sets it).
function(loom_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${LOOM_WERROR}>>:-Werror>)
endfunction()
