/* placeholder: shm is being written */
#include <stddef.h>
