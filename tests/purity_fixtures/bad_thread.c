void f(void *m) { pthread_mutex_lock(m); }
