/*
 * libipq.h: the spelling most libipq programs use (#include <libipq.h>).
 * The API is in <libipq/libipq.h>, the spelling of iptables' own tree.
 */
#ifndef LIBIPQ_H_TOPLEVEL
#define LIBIPQ_H_TOPLEVEL
#include <libipq/libipq.h>
#endif
