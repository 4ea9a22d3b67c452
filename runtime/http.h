/* Outbound HTTPS client (libcurl).
 *
 * - TLS verification is always on and only https:// URLs are allowed. PBIPORT_CA_BUNDLE
 *   names an EXTRA CA file: it is appended to the system bundle (CURLOPT_CAINFO_BLOB), so
 *   both public and private CAs stay trusted.
 * - One pb_http per process (or per thread): its share object keeps connections, DNS and
 *   TLS sessions across calls, serial and parallel.
 * - A response body above max_body bytes fails the call; headers are kept (bounded) and
 *   looked up by name.
 * - pb_http_run_many runs N requests on a curl multi handle with at most `parallel` jobs
 *   in progress; a per-reply callback decides whether a job is done or runs again after a
 *   delay (with the same or a changed request): retry policy and protocol knowledge live
 *   in the caller, not here.
 *
 * A non-2xx status is not an error of this layer: rc is 0 and resp->status tells. rc < 0
 * means no HTTP answer arrived (connect, TLS, timeout, dropped connection, size ceiling). */
#ifndef PBIPORT_HTTP_H
#define PBIPORT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/limits.h"

typedef struct pb_http pb_http;

typedef struct pb_http_opts {
	long connect_timeout_ms;   /* 0: PB_HTTP_CONNECT_TIMEOUT_MS */
	long timeout_ms;           /* 0: PB_HTTP_TIMEOUT_MS */
	size_t max_body;           /* 0: PB_HTTP_BODY_MAX */
	const char *ca_bundle;     /* extra CA PEM file (pb_config.ca_bundle); NULL: none */
	bool public_only;          /* for URLs someone typed in (webhooks): connect only to public
				      addresses (pb_addr_internal refuses the others), checked on the
				      address each connection is opened to, after DNS, and directly
				      (no proxy, whose address is not the target's). A refusal fails
				      the call with PB_EFORBIDDEN. */
} pb_http_opts;

/* opts may be NULL. *out is new: free with pb_http_free. */
int pb_http_new(const pb_http_opts *opts, pb_http **out, char *err);
/* Checks that path is a readable file holding PEM certificates, as pb_http_new will load it
 * (runtime/config.c, at start-up). PB_EINVAL naming PBIPORT_CA_BUNDLE. */
int pb_http_ca_check(const char *path, char *err);

/* How many trust stores this process has parsed from a CA bundle (pb_http_new keeps the last
 * one and reuses it while the files are unchanged): for tests and benchmarks. */
unsigned long pb_http_ca_parses(void);
/* How many connections every pb_http of this process has opened so far (a reused one does not
 * count): for tests and benchmarks. */
unsigned long pb_http_connections_opened(void);
void pb_http_free(pb_http *h);

typedef struct pb_http_req {
	const char *method;               /* "GET", "POST", ... (borrowed) */
	const char *url;                  /* https://... (borrowed) */
	const char *const *headers;       /* "Name: value" lines (borrowed), nheaders of them */
	size_t nheaders;
	const void *body;                 /* borrowed; sent as is */
	size_t body_len;
	long timeout_ms;                  /* 0: the client's default */
	bool fresh_connection;            /* use a new connection: libcurl silently replays a request
					   * whose reused connection died, which a non-idempotent call
					   * must not allow */
} pb_http_req;

typedef struct pb_http_resp {
	long status;                      /* HTTP status; 0 when no answer */
	char *body;                       /* new: NUL-terminated (never NULL after a reply) */
	size_t body_len;
	char *hdrs;                       /* new: "name\0value\0..." of the final reply */
	size_t hdrs_len;
	int curl_code;                    /* CURLcode of the transfer (0 = fine) */
	bool request_sent;                /* some request bytes left us: outcome may be unknown */
	double seconds;                   /* total transfer time */
	long new_connections;             /* connections opened for this transfer (0 = reused) */
	bool address_refused;             /* opts.public_only refused an address the host resolved to */
} pb_http_resp;

/* Releases everything a response owns and zeroes it. */
void pb_http_resp_release(pb_http_resp *r);
/* Value of header `name` (case-insensitive; the last one wins), borrowed until release;
 * NULL when absent. */
const char *pb_http_header(const pb_http_resp *r, const char *name);
/* Retry-After as seconds (integer or HTTP-date); -1 when absent or unreadable. */
long pb_http_retry_after(const pb_http_resp *r);
/* True when the transfer failed after (part of) the request was sent: the server may
 * have acted on it, so a non-idempotent call must be checked before it is repeated. */
bool pb_http_outcome_unknown(const pb_http_resp *r, int rc);

/* True when a transfer failure may heal on retry (refused or dropped connection, timeout,
 * name lookup hiccup); false for TLS verification, bad URLs and our own ceilings. */
bool pb_http_transient(const pb_http_resp *r, int rc);

struct sockaddr;
/* True for an address a URL typed in must not reach (server-side request forgery): loopback,
 * private (RFC 1918, unique local), link-local, shared (100.64/10), unspecified, multicast,
 * reserved and broadcast, benchmarking, IPv4 embedded in IPv6 (mapped, NAT64, 6to4) when the
 * embedded address is one, and any family other than IPv4 and IPv6. */
bool pb_addr_internal(const struct sockaddr *sa);

/* One request, synchronously. resp is filled (release it even on error). */
int pb_http_do(pb_http *h, const pb_http_req *req, pb_http_resp *resp, char *err);

/* Callback for pb_http_run_many, called once per finished transfer of job idx.
 * rc/err: the transfer's result (as pb_http_do would return). resp is released after the
 * callback returns; the callback may take fields (set them to NULL).
 * Return PB_HTTP_DONE, or PB_HTTP_AGAIN with *delay_ms set to run job idx again (the
 * callback may first change reqs[idx]), or a negative pb_rc to stop the whole batch
 * (write the message into batch_err, PB_ERR_MAX bytes). */
enum { PB_HTTP_DONE = 0, PB_HTTP_AGAIN = 1 };
typedef int (*pb_http_done_fn)(void *ctx, size_t idx, pb_http_resp *resp, int rc, const char *err,
			       long *delay_ms, char *batch_err);

/* Runs reqs[0..n) with at most `parallel` jobs in progress (a job waiting for its retry
 * delay still counts, so `parallel` bounds the work the server sees). Jobs start in index
 * order. Returns 0 when every job reported DONE, or the callback's negative rc (err set). */
int pb_http_run_many(pb_http *h, pb_http_req *reqs, size_t n, int parallel,
		     pb_http_done_fn fn, void *ctx, char *err);

/* While *stop (borrowed; NULL to unset) is non-zero, pb_http_run_many gives up at its next
 * wake-up (within about a second) with PB_EIO, so a worker asked to stop does not wait
 * out long polling intervals. pb_http_do is not interrupted: its timeout bounds it. */
void pb_http_set_stop(pb_http *h, volatile int *stop);


#endif
