/* placeholder: sse is being written */
#include <stddef.h>
