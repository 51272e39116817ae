/* Built against an installed mtconn tree by tests/check_install.sh: the
 * public header and the generated TL API must work from there alone. */
#include <mtconn/mtconn.h>
#include <mtconn/tl_api.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  if (strcmp(mtc_version(), MTC_VERSION_STRING) != 0) {
    fprintf(stderr, "version mismatch: %s vs %s\n", mtc_version(), MTC_VERSION_STRING);
    return 1;
  }
  if (strcmp(mtc_strerror(MTC_ERR_TL_TRUNCATED), "TL data truncated") != 0) return 1;
  /* help.getConfig serializes to its constructor id, c4f9186b little-endian. */
  static const uint8_t want[4] = {0x6b, 0x18, 0xf9, 0xc4};
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = mtc_tl_req_help_getConfig(NULL, &buf, &len);
  if (rc != 0 || len != 4 || memcmp(buf, want, 4) != 0) {
    fprintf(stderr, "help.getConfig encoding wrong (rc %d, %zu bytes)\n", rc, len);
    return 1;
  }
  mtc_tl_buffer_free(buf);
  printf("consumer: linked mtconn %s (layer %d), %s encodes\n", mtc_version(), MTC_TL_LAYER,
         mtc_tl_name(MTC_TL_ID_fn_help_getConfig));
  return 0;
}
