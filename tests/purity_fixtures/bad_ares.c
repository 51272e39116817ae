void f(void *c) { ares_process_fd(c, 0, 0); }
