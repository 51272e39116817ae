long f(void) { return time(0); }
