int f(int fd) { return connect(fd, 0, 0); }
