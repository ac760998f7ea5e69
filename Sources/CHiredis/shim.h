#ifndef SESSIOND_CHIREDIS_SHIM_H
#define SESSIOND_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
