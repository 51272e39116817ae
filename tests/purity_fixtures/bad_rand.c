int f(void) { return rand(); }
