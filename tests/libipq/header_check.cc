// libipq.h in C++98 (see header_check.c).
#include "header_check.c"
