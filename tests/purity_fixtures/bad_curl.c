void f(void *c) { curl_multi_perform(c, 0); }
