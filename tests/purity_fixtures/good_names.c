/* the socket( and time( words in a comment are fine */
static int my_time(int now_ms) { return now_ms; } // rand() here too
const char *s = "connect(";
int g(void) { return my_time(3); }
