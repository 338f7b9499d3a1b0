/* placeholder: worker is being written */
#include <stddef.h>
