/* version.h - the relay's version, in one place (make may override it). */
#ifndef RELAY_VERSION_H
#define RELAY_VERSION_H

#ifndef RELAY_VERSION
#define RELAY_VERSION "0.1.0"
#endif

#endif
