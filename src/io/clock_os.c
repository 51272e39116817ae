/* Default clocks (see clock.h). Shell code: the only place that reads them. */
#include <time.h>

#include "io/clock.h"

static int64_t clock_ms(clockid_t id) {
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * 1000 + (int64_t)(ts.tv_nsec / 1000000);
}

int64_t mtci_clock_realtime_ms(void) { return clock_ms(CLOCK_REALTIME); }

int64_t mtci_clock_monotonic_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

int64_t mtci_clock_realtime_cb(void *ud) {
  (void)ud;
  return mtci_clock_realtime_ms();
}
