/* crc32c.h: CRC-32C (Castagnoli), the checksum of ledger ring and spool records. */
#ifndef TG_CRC32C_H
#define TG_CRC32C_H

#include "core/common.h"

/* Extends `crc` (0 to start) over p[0..n) and returns the new CRC-32C. Uses the SSE4.2
 * crc32 instruction when the CPU has it, a slicing-by-8 table otherwise. Both give
 * identical results; "123456789" checks to 0xE3069283. */
uint32_t tg_crc32c(uint32_t crc, const void *p, size_t n);

/* The table-driven implementation alone (always available; tests compare both paths). */
uint32_t tg_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* True when tg_crc32c uses the hardware instruction. */
bool tg_crc32c_is_hw(void);

#endif
