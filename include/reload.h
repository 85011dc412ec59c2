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
 * Readers hold the configuration in force with config_hold() once per
 * request or per delivery, use that one throughout and release it. A
 * replaced configuration is freed when its last holder releases it, so
 * reloads do not add up in memory. The first configuration (reload_init)
 * is the exception: the modules started with it read its fixed keys until
 * exit, and it is freed only by reload_free_all.
 */
#ifndef RELAY_RELOAD_H
#define RELAY_RELOAD_H

#include <stddef.h>

#include "config.h"

/* Puts cfg (loaded, owned from now on) in force. */
void reload_init(struct config *cfg);

/* The configuration in force, valid until config_release() of it; never
 * NULL after reload_init. Safe from any thread. */
const struct config *config_hold(void);

/* Ends a config_hold(); frees the configuration when a reload replaced
 * it and this was its last holder. Safe from any thread. */
void config_release(const struct config *cfg);

/* Reads the file again; returns 0 with a summary in msg, or -1 with the
 * reason (the old configuration stays). Safe from any thread. */
int reload_now(char *msg, size_t msglen);

/* How many configurations are in memory: the one in force, the first one
 * and the replaced ones still held (for tests). */
size_t reload_configs_kept(void);

/* Frees every configuration; at exit, when no thread uses them. */
void reload_free_all(void);

#endif
