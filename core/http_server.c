/* placeholder: http_server is being written */
#include <stddef.h>
