/* placeholder: conf is being written */
#include <stddef.h>
