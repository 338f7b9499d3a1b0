/* placeholder: master is being written */
#include <stddef.h>
