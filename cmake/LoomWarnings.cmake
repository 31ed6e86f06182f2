# loom_set_warnings(target): the project's warning flags; -Werror with LOOM_WERROR=ON (CI sets it).
function(loom_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter -Wno-missing-field-initializers>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${LOOM_WERROR}>>:-Werror>
    # GCC 12 at -O3 flags yaml-cpp's own inline node code (node/impl.h) with a false -Wdangling-pointer.
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-dangling-pointer>)
endfunction()
