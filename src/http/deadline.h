/*
 * deadline.h - internal to src/http: a deadline for the part of a
 * connection before a request's headers are complete (slow clients).
 *
 * libmicrohttpd's connection timeout is an idle timeout: any byte resets it,
 * so a client sending one header byte per second (slowloris) holds a
 * connection, and with it one of max_connections threads, for ever; and
 * idle keep-alive connections hold theirs for the whole idle timeout. Here
 * every connection gets header_timeout_s, counted from its start or from the
 * end of its previous request, to deliver complete headers; past that a
 * watchdog thread shuts its socket down and MHD closes it. The time a
 * handler runs and a body uploads is not limited here (the idle timeout and
 * the body caps bound it).
 *
 * Thread-safety: the notify/busy calls come from MHD's connection threads;
 * one mutex guards the list the watchdog walks.
 */
#ifndef BGR_HTTP_DEADLINE_H
#define BGR_HTTP_DEADLINE_H

#include <stdbool.h>

#include <microhttpd.h>

#include "core/core.h"

struct bgr_http_deadline;

/* Starts the watchdog; *out is owned by the caller (bgr_http_deadline_stop).
 * Errors: BGR_EINTERNAL when the thread cannot start. */
int bgr_http_deadline_start(unsigned header_timeout_s, struct bgr_http_deadline **out,
                            struct bgr_error *err);
/* Stops the watchdog and frees d (NULL is fine). Call after MHD_stop_daemon,
 * when every connection has been closed. */
void bgr_http_deadline_stop(struct bgr_http_deadline *d);
/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the bgr_http_deadline. */
void bgr_http_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode code);
/* Marks c's request as under way (headers complete: no deadline) or, with
 * busy false, finished (the next request's headers are due in time). */
void bgr_http_deadline_busy(struct MHD_Connection *c, bool busy);

#endif
