/*
 * config_int.h - what the relay.conf reader (config.c) and its [tenant ID]
 * sections (config_tenant.c) share: the parser's state and its error
 * helpers. Nothing else includes it; the interface is config.h.
 */
#ifndef RELAY_CONFIG_INT_H
#define RELAY_CONFIG_INT_H

#include <stddef.h>

#include "config.h"

/* The sections of relay.conf; [tenant ID] sections are SEC_TENANT. */
enum config_section {
	SEC_NONE = -1,
	SEC_SERVER, SEC_LIMITS, SEC_STORAGE, SEC_UPSTREAM, SEC_TENANCY, SEC_USAGE,
	SEC_LOG,
	SEC_TENANT
};

/* The state of one config_load. */
struct parser {
	struct config *cfg;           /* ref */
	const char *file;             /* ref */
	unsigned line;
	enum config_section section;
	struct config_tenant *tenant; /* ref: the current [tenant] */
	unsigned tenant_seen;
	unsigned *key_line;           /* ref: per row of config.c's
				       * config_keys[], the line it was set
				       * on; 0: default */
	char *err;                    /* ref */
	size_t errlen;
};

/* Writes "FILE:LINE: reason" (or "FILE: reason" for line 0) into p->err.
 * Always returns -1. */
int config_fail(struct parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Copies v into *dst (freeing the old string); "" stores NULL. Returns 0,
 * or -1 when memory is short. */
int config_set_string(struct parser *p, char **dst, const char *v);

/* config_tenant.c */

/* Sets one key of the current [tenant ID] section (p->tenant). Returns 0
 * or -1 with the reason in p->err. */
int config_tenant_set(struct parser *p, const char *key, const char *v);

#endif
