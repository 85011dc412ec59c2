/*
 * curl_mem.c - libcurl's allocator, keeping its upload buffers (see
 * curl_mem.h).
 */
#include "curl_mem.h"

#include <curl/curl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t keep_size;          /* 0: nothing is kept */
static void *kept[CURL_MEM_KEEP]; /* owned: free buffers of keep_size */
static unsigned nkept;

static void *mem_malloc(size_t size)
{
	void *p = NULL;

	if (size == keep_size) {
		pthread_mutex_lock(&lock);
		if (nkept > 0)
			p = kept[--nkept];
		pthread_mutex_unlock(&lock);
		if (p != NULL)
			return p;
	}
	return malloc(size);
}

/* Whether p, about to be freed, can serve a later request of keep_size
 * bytes: malloc gave it at least that much, and not much more (a larger
 * block is not kept where a smaller one would do). */
static int keepable(void *p)
{
	size_t usable = malloc_usable_size(p);

	return keep_size > 0 && usable >= keep_size && usable < keep_size + 4096;
}

static void mem_free(void *p)
{
	if (p != NULL && keepable(p)) {
		pthread_mutex_lock(&lock);
		if (nkept < CURL_MEM_KEEP) {
			kept[nkept++] = p;
			p = NULL;
		}
		pthread_mutex_unlock(&lock);
	}
	free(p);
}

static void *mem_realloc(void *p, size_t size)
{
	return realloc(p, size);
}

static char *mem_strdup(const char *s)
{
	return strdup(s);
}

static void *mem_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

int curl_mem_init(size_t size)
{
	keep_size = size;
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, mem_malloc, mem_free,
				 mem_realloc, mem_strdup, mem_calloc) != CURLE_OK)
		return ERR_FAIL;
	return 0;
}

void curl_mem_cleanup(void)
{
	curl_global_cleanup();
	pthread_mutex_lock(&lock);
	while (nkept > 0)
		free(kept[--nkept]);
	keep_size = 0;
	pthread_mutex_unlock(&lock);
}
