/*
 * deadline.h - internal to src/http: whole-request deadlines and the
 * sharing of connection slots between clients (slow and hostile clients).
 *
 * libmicrohttpd's connection timeout is an idle timeout: any byte resets it,
 * so a client sending one byte every few seconds holds a connection, and
 * with it one of max_connections slots, for as long as it likes. Here every
 * connection is in one of three phases, each with a deadline counted as a
 * whole, never per byte:
 *   - waiting for headers: header_timeout_s from its start or from the end
 *     of its previous request (slowloris, idle keep-alive);
 *   - receiving a body: body_grace_s plus the declared length (or the cap
 *     of a chunked body) at body_min_rate bytes a second, from the end of
 *     the headers; this covers the lingering drain of a refused body too;
 *   - being answered: no deadline here (the handler's own bounds, then
 *     MHD's idle timeout while the answer is sent).
 * Past its deadline a watchdog thread shuts the socket down and MHD closes
 * it, which releases its body reservation.
 *
 * Slots are shared too. When a new connection leaves fewer than a few free
 * slots, the connection idle for the longest (waiting for headers) is
 * closed first, as nginx reuses idle keep-alive connections; and
 * connections that have not yet presented a valid API key may hold at most
 * unauth_pct percent of the slots: past that the oldest of them that is not
 * being answered is closed. A newcomer is never the one closed, so a client
 * that sends its request promptly always gets served.
 *
 * Thread-safety: the notify/phase calls come from MHD's connection threads;
 * one mutex guards the list the watchdog walks.
 */
#ifndef BGR_HTTP_DEADLINE_H
#define BGR_HTTP_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "core/core.h"

struct bgr_http_deadline;

struct bgr_http_deadline_cfg {
    unsigned header_timeout_s; /* 0 = 20 */
    unsigned max_connections;  /* the daemon's slots; 0 = 256 */
    unsigned body_min_rate;    /* bytes a second a body must average; 0 = 32768 */
    unsigned body_grace_s;     /* added to every body's time; 0 = 10 */
    unsigned unauth_pct;       /* slots connections without a valid key may hold; 0 = 50 */
};

/* Starts the watchdog; *out is owned by the caller (bgr_http_deadline_stop).
 * Errors: BGR_EINTERNAL when the thread cannot start. */
int bgr_http_deadline_start(const struct bgr_http_deadline_cfg *cfg, struct bgr_http_deadline **out,
                            struct bgr_error *err);
/* Stops the watchdog and frees d (NULL is fine). Call after MHD_stop_daemon,
 * when every connection has been closed. */
void bgr_http_deadline_stop(struct bgr_http_deadline *d);
/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the bgr_http_deadline. */
void bgr_http_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode code);
/* Headers are complete: c's body of body_len bytes (0 = none) is due within
 * its time. authed: the request carried a valid API key (the connection
 * counts as authenticated from now on). */
void bgr_http_deadline_body(struct MHD_Connection *c, uint64_t body_len, bool authed);
/* The body is in: the request is being answered (no deadline). */
void bgr_http_deadline_answering(struct MHD_Connection *c);
/* The request is finished: the next request's headers are due in time. */
void bgr_http_deadline_idle(struct MHD_Connection *c);
/* Connections closed by each rule since the start (for metrics). */
struct bgr_http_deadline_stats {
    uint64_t header_timeouts, body_timeouts, idle_evicted, unauth_evicted;
};
void bgr_http_deadline_stats(struct bgr_http_deadline *d, struct bgr_http_deadline_stats *out);

#endif
