/* placeholder: listen is being written */
#include <stddef.h>
