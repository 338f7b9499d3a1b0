/* placeholder: proxy is being written */
#include <stddef.h>
