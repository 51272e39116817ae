#include <sys/socket.h>
int f(void) { return 0; }
