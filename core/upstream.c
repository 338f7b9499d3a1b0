/* placeholder: upstream is being written */
#include <stddef.h>
