/* placeholder: tls is being written */
#include <stddef.h>
