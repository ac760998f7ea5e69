#ifndef SESSIOND_CSODIUM_SHIM_H
#define SESSIOND_CSODIUM_SHIM_H
#include <sodium.h>
#endif
