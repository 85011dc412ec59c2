/*
 * curl_mem.h - libcurl's allocator: its upload buffers are kept for the
 * next request instead of going back to malloc.
 *
 * libcurl allocates a request's upload buffer (CURLOPT_UPLOAD_BUFFERSIZE,
 * 64 KiB for the forwarders) when the request starts and frees it when the
 * request ends (libcurl 7.88, Debian 12's; a libcurl that keeps one
 * buffer itself would make this allocator change nothing). Freed to malloc, buffers of that size go back and forth
 * between the arenas of the threads that send, and the small allocations
 * made in between keep the space they leave resident: measured during a
 * drain of 40 M samples, about 0.1 MiB of anonymous memory beyond the
 * buffers in use. Kept here instead (a free list under a mutex, at most
 * CURL_MEM_KEEP of them), there are never more of them than requests
 * were in flight at once, and each request saves a malloc and a free.
 * Everything else curl allocates goes to malloc as it is.
 */
#ifndef RELAY_CURL_MEM_H
#define RELAY_CURL_MEM_H

#include <stddef.h>

/* Buffers kept at most (more than [upstream] concurrency ever needs). */
#define CURL_MEM_KEEP 64

/*
 * curl_global_init(CURL_GLOBAL_DEFAULT) with this allocator; buffers of
 * keep_size bytes are kept. Call once, before any other libcurl call.
 * Returns 0 or ERR_FAIL (curl could not initialise).
 */
int curl_mem_init(size_t keep_size);

/* curl_global_cleanup(), then frees the buffers kept. */
void curl_mem_cleanup(void);

#endif
