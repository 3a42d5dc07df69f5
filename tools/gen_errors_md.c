/*
 * gen_errors_md - prints docs/ERRORS.md from the BGR_ERRORS list, so the
 * documented codes can never drift from the code. A CTest test compares its
 * output with the committed file; `make docs` rewrites it.
 */
#include <stdio.h>

#include "core/err.h"

int main(void)
{
    printf("# Error codes\n\n"
           "Generated from `src/core/err.h` by `tools/gen_errors_md` (do not edit by hand).\n\n"
           "Every error response of the `/v1` API is\n"
           "`{\"success\": false, \"error\": {\"code\": CODE, \"message\": TEXT}}` with the HTTP status\n"
           "below. Several internal conditions share the public code `INTERNAL_ERROR`; their\n"
           "details go to the server log, never to the client.\n\n"
           "| code | HTTP status | default message | internal name |\n"
           "| --- | --- | --- | --- |\n");
#define ROW(name, code, status, msg) printf("| `%s` | %d | %s | `BGR_E%s` |\n", code, status, msg, #name);
    BGR_ERRORS(ROW)
#undef ROW
    return 0;
}
