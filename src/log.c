/*
 * log.c - logfmt lines on stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Set by a reload while every thread logs. */
static _Atomic int min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
	atomic_store(&min_level, (int)level);
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < 4 ? level_names[level] : "?";
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void vlog(enum log_level level, const char *msg, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void vlog(enum log_level level, const char *msg, const char *fmt, va_list ap)
{
	char line[2048], ts[32];
	struct timespec now;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s msg=\"%s\"", ts,
		     now.tv_nsec / 1000000, level_names[level], msg);
	n = r < 0 ? 0 : ((size_t)r < sizeof(line) ? (size_t)r : sizeof(line) - 1);
	if (fmt != NULL && fmt[0] != '\0' && n < sizeof(line) - 2) {
		line[n++] = ' ';
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	}
	line[n++] = '\n';
	fwrite(line, 1, n, stderr);
}

void log_msg(enum log_level level, const char *msg, const char *fmt, ...)
{
	va_list ap;

	if ((int)level < atomic_load(&min_level))
		return;
	va_start(ap, fmt);
	vlog(level, msg, fmt, ap);
	va_end(ap);
}

const char *log_quote(const char *s, size_t slen, char *out, size_t n)
{
	size_t o = 0;
	int quote = slen == 0;

	for (size_t i = 0; i < slen && !quote; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			quote = 1;
	}
	if (n == 0)
		return out;
	if (quote && o + 1 < n)
		out[o++] = '"';
	for (size_t i = 0; i < slen && o + 4 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < ' ' || c == 0x7f) {
			out[o++] = '\\';
			out[o++] = c == '\n' ? 'n' : (c == '\t' ? 't' : '?');
		} else {
			out[o++] = (char)c;
		}
	}
	if (quote && o + 1 < n)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}

const char *log_redact_url(const char *url, char *out, size_t n)
{
	const char *scheme = strstr(url, "://"), *host, *at;
	size_t pre;

	host = scheme ? scheme + 3 : url;
	at = strchr(host, '@');
	if (at == NULL || (strchr(host, '/') && strchr(host, '/') < at)) {
		snprintf(out, n, "%s", url);
		return out;
	}
	pre = (size_t)(host - url);
	snprintf(out, n, "%.*s***%s", (int)pre, url, at);
	return out;
}

void fatal(const char *msg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERROR, msg, fmt, ap);
	va_end(ap);
	exit(1);
}
