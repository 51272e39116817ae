/* Placeholder until the vectors summary lands. */
#include <stdio.h>
#include "mtconn/mtconn.h"
int main(void) { printf("mtconn %s\n", mtc_version()); return 0; }
