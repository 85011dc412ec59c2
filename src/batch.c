/*
 * batch.c - a request on its way to the buffer (see batch.h).
 */
#include "batch.h"

#include <stdlib.h>

void batch_release(struct batch *b)
{
	for (size_t i = 0; i < b->nchunks; i++)
		free(b->chunks[i].block);
	free(b->chunks);
	b->chunks = NULL;
	b->nchunks = 0;
}
