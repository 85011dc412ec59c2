/*
 * log.h - one line per event on stderr, logfmt key=value pairs.
 *
 *   ts=2026-11-24T19:00:00.123Z level=warn msg="upstream refused batch" status=400
 *
 * log_msg's fmt is the rest of the line after msg; callers write key=value
 * pairs themselves and quote values that may hold spaces (log_quote helps).
 */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level that is printed. */
void log_set_level(enum log_level level);

/* "debug", "info", "warn" or "error". */
const char *log_level_name(enum log_level level);

/* Parses "debug", "info", "warn" or "error". Returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);

/* Prints one line: ts, level, msg="<msg>", then the formatted pairs. */
void log_msg(enum log_level level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copies s into out (size n) as a logfmt value: quoted and escaped when it
 * holds spaces, quotes, '=' or control bytes; cut to fit. Returns out. */
const char *log_quote(const char *s, size_t slen, char *out, size_t n);

/* Copies url into out (size n) with any user:password@ replaced by
 * "***@", so that credentials never reach the log. Returns out. */
const char *log_redact_url(const char *url, char *out, size_t n);

/* Prints an error and exits 1; for start-up only. */
void fatal(const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

#endif
