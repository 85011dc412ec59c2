/*
 * reload.h - the configuration in force, and reloading it.
 *
 * SIGHUP or POST /-/reload (admin) read the file again. A file that does
 * not load keeps the old configuration in force and says why. Otherwise
 * the new one takes over for [tenant] sections (tokens, limits, account
 * ids), [tenancy], [server] admin_token, [upstream] url and [log] level;
 * any other key that changed keeps its old value, with a warning that it
 * needs a restart. Connections and buffered data are not touched.
 *
 * Readers take config_current() once per request or per delivery and use
 * that one throughout; a replaced configuration stays valid until exit
 * (each reload keeps a few KiB).
 */
#ifndef RELAY_RELOAD_H
#define RELAY_RELOAD_H

#include <stddef.h>

#include "config.h"

/* Puts cfg (loaded, owned from now on) in force. */
void reload_init(struct config *cfg);

/* The configuration in force. */
const struct config *config_current(void);

/* Reads the file again; returns 0 with a summary in msg, or -1 with the
 * reason (the old configuration stays). Safe from any thread. */
int reload_now(char *msg, size_t msglen);

/* Frees every configuration; at exit, when no thread uses them. */
void reload_free_all(void);

#endif
