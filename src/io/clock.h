/*
 * Default clocks of the IO shell. The pure core never reads a clock: the
 * context reads one of these (or the host's now_ms callback) and passes the
 * time down as a parameter.
 *
 * realtime: wall clock (CLOCK_REALTIME), what MTProto msg_ids and the server
 *   time offset are measured against; it may jump.
 * monotonic: CLOCK_MONOTONIC, for measuring intervals (tests, latency); its
 *   origin is arbitrary.
 * Both return milliseconds, never fail on Linux (a failing clock_gettime
 * would give 0), and are thread-safe.
 */
#ifndef MTCI_IO_CLOCK_H
#define MTCI_IO_CLOCK_H

#include <stdint.h>

int64_t mtci_clock_realtime_ms(void);
int64_t mtci_clock_monotonic_ms(void);

/* mtci_clock_realtime_ms in the shape of mtc_callbacks.now_ms (ud unused). */
int64_t mtci_clock_realtime_cb(void *ud);

#endif /* MTCI_IO_CLOCK_H */
