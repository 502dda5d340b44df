// The API symbols are the only ones libipq.so exports (the rest of the
// library is compiled with hidden visibility; libipq.map lists the names).
#pragma once

#define LIBIPQ_EXPORT __attribute__((visibility("default")))
