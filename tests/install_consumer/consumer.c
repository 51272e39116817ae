/* Built against an installed mtconn tree by tests/check_install.sh. */
#include <mtconn/mtconn.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  if (strcmp(mtc_version(), MTC_VERSION_STRING) != 0) {
    fprintf(stderr, "version mismatch: %s vs %s\n", mtc_version(), MTC_VERSION_STRING);
    return 1;
  }
  if (strcmp(mtc_strerror(MTC_ERR_TL_TRUNCATED), "TL data truncated") != 0) return 1;
  printf("consumer: linked mtconn %s (layer %d)\n", mtc_version(), MTC_TL_LAYER);
  return 0;
}
