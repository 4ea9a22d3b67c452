#include "runtime/http.h"
#include "runtime/timeutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "runtime/strbuf.h"
#include "runtime/util.h"

struct pb_http {
	CURLSH *share;
	pthread_mutex_t lock[CURL_LOCK_DATA_LAST];
	CURL *easy;               /* serial calls */
	CURLM *multi;             /* pb_http_run_many */
	long connect_timeout_ms;
	long timeout_ms;
	size_t max_body;
	bool public_only;         /* pb_http_opts.public_only */
	X509_STORE *ca_store;     /* system CAs + extra CA, shared by every connection; NULL: curl's defaults */
	char *ca_extra;           /* path of the extra CA file, for messages */
	volatile int *stop;       /* borrowed: pb_http_set_stop */
};

/* One transfer in progress: what the callbacks fill. */
struct xfer {
	pb_http *h;
	const pb_http_req *req;
	sbuf body;
	sbuf hdrs;
	bool too_big;
	bool hdrs_too_big;
	struct curl_slist *hl;
	char errbuf[CURL_ERROR_SIZE];
	bool address_refused;     /* public_only refused an address (open_public_socket) */
	char refused[INET6_ADDRSTRLEN];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access access, void *ud)
{
	(void)e;
	(void)access;
	pb_http *h = ud;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->lock[data]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *ud)
{
	(void)e;
	pb_http *h = ud;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->lock[data]);
}

/* The trust store: system CAs plus the extra CA file, parsed into an
 * OpenSSL X509_STORE that every TLS connection shares (ssl_ctx_trust below). Handing curl
 * the PEM text instead (CURLOPT_CAINFO_BLOB) re-parses ~150 certificates for each new
 * connection: measured at 25 ms of CPU per connection. CURLOPT_CAINFO alone would replace
 * the system bundle, so public CAs would stop working. *out is new (X509_STORE_free). */
static int ca_store_new(const char *extra, X509_STORE **out, char *err)
{
	X509_STORE *store = X509_STORE_new();
	*out = NULL;
	if (!store)
		return pb_err(err, PB_ENOMEM, "out of memory");
	/* a machine without a system bundle still trusts the extra CA */
	X509_STORE_set_default_paths(store);
	ERR_clear_error();
	/* fails when the file cannot be read or holds no certificate */
	if (X509_STORE_load_file(store, extra) != 1) {
		ERR_clear_error();
		X509_STORE_free(store);
		FILE *f = fopen(extra, "rb");
		if (!f)
			return pb_err(err, PB_EINVAL, "PBIPORT_CA_BUNDLE: %s: %s", extra, strerror(errno));
		fclose(f);
		return pb_err(err, PB_EINVAL, "PBIPORT_CA_BUNDLE=%s holds no PEM certificate", extra);
	}
	*out = store;
	return PB_OK;
}

/* The last trust store made for a CA bundle, kept for the process: a worker makes a pb_http
 * per job, and parsing the system bundle again for each was ~25 ms of a publish job's CPU.
 * Reused while the extra file and the system bundle are the same files, unchanged (an
 * edited or replaced file makes a new store). */
static pthread_mutex_t ca_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long ca_parses;
static struct {
	char *path;
	struct stat extra, system;
	bool have_system;
	X509_STORE *store;
} ca_cache;

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* ca_store_new through the cache: *out is a reference of the caller's (X509_STORE_free). */
static int ca_store_get(const char *extra, X509_STORE **out, char *err)
{
	struct stat se, ss;
	bool have_extra = stat(extra, &se) == 0;
	/* OpenSSL's default bundle (an SSL_CERT_FILE given instead is not watched) */
	bool have_system = stat(X509_get_default_cert_file(), &ss) == 0;
	*out = NULL;
	pthread_mutex_lock(&ca_cache_lock);
	if (have_extra && ca_cache.store && !strcmp(ca_cache.path, extra) && same_file(&ca_cache.extra, &se) &&
	    ca_cache.have_system == have_system && (!have_system || same_file(&ca_cache.system, &ss)) &&
	    X509_STORE_up_ref(ca_cache.store) == 1)
		*out = ca_cache.store;
	pthread_mutex_unlock(&ca_cache_lock);
	if (*out)
		return PB_OK;
	int rc = ca_store_new(extra, out, err);
	pthread_mutex_lock(&ca_cache_lock);
	ca_parses++;
	pthread_mutex_unlock(&ca_cache_lock);
	char *path = rc || !have_extra ? NULL : xstrdup(extra);
	if (!path || X509_STORE_up_ref(*out) != 1) {
		free(path);
		return rc;
	}
	pthread_mutex_lock(&ca_cache_lock);
	X509_STORE *old = ca_cache.store;
	free(ca_cache.path);
	ca_cache.path = path;
	ca_cache.extra = se;
	ca_cache.system = ss;
	ca_cache.have_system = have_system;
	ca_cache.store = *out;
	pthread_mutex_unlock(&ca_cache_lock);
	X509_STORE_free(old);
	return PB_OK;
}

unsigned long pb_http_ca_parses(void)
{
	pthread_mutex_lock(&ca_cache_lock);
	unsigned long n = ca_parses;
	pthread_mutex_unlock(&ca_cache_lock);
	return n;
}

int pb_http_ca_check(const char *path, char *err)
{
	X509_STORE *store;
	int rc = ca_store_new(path, &store, err);
	X509_STORE_free(store);
	return rc;
}

static int load_ca(pb_http *h, const char *extra, char *err)
{
	int rc = ca_store_get(extra, &h->ca_store, err);
	if (rc)
		return rc;
	h->ca_extra = xstrdup(extra);
	if (!h->ca_extra)
		return pb_err(err, PB_ENOMEM, "out of memory");
	return PB_OK;
}

/* curl calls this for every new TLS connection: install the shared store. */
static CURLcode ssl_ctx_trust(CURL *e, void *ssl_ctx, void *ud)
{
	(void)e;
	pb_http *h = ud;
	SSL_CTX_set1_cert_store(ssl_ctx, h->ca_store);   /* takes its own reference */
	return CURLE_OK;
}

int pb_http_new(const pb_http_opts *opts, pb_http **out, char *err)
{
	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return pb_err(err, PB_EINTERNAL, "libcurl initialisation failed: %s", curl_easy_strerror(global_rc));
	pb_http *h = calloc(1, sizeof *h);
	if (!h)
		return pb_err(err, PB_ENOMEM, "out of memory");
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->lock[i], NULL);
	int rc = PB_OK;
	h->connect_timeout_ms = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : PB_HTTP_CONNECT_TIMEOUT_MS;
	h->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : PB_HTTP_TIMEOUT_MS;
	h->max_body = opts && opts->max_body ? opts->max_body : PB_HTTP_BODY_MAX;
	h->public_only = opts && opts->public_only;
	h->share = curl_share_init();
	h->easy = curl_easy_init();
	h->multi = curl_multi_init();
	if (!h->share || !h->easy || !h->multi) {
		rc = pb_err(err, PB_ENOMEM, "libcurl: out of memory");
		goto out;
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	if (opts && opts->ca_bundle && *opts->ca_bundle)
		rc = load_ca(h, opts->ca_bundle, err);
out:
	if (rc) {
		pb_http_free(h);
		return rc;
	}
	*out = h;
	return PB_OK;
}

void pb_http_set_stop(pb_http *h, volatile int *stop)
{
	h->stop = stop;
}

void pb_http_free(pb_http *h)
{
	if (!h)
		return;
	if (h->easy)
		curl_easy_cleanup(h->easy);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->lock[i]);
	X509_STORE_free(h->ca_store);
	free(h->ca_extra);
	free(h);
}

void pb_http_resp_release(pb_http_resp *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->hdrs);
	memset(r, 0, sizeof *r);
}

const char *pb_http_header(const pb_http_resp *r, const char *name)
{
	const char *found = NULL;
	if (!r || !r->hdrs)
		return NULL;
	const char *p = r->hdrs, *end = r->hdrs + r->hdrs_len;
	while (p < end) {
		const char *v = p + strlen(p) + 1;
		if (v >= end)
			break;
		if (!strcasecmp(p, name))
			found = v;
		p = v + strlen(v) + 1;
	}
	return found;
}

long pb_http_retry_after(const pb_http_resp *r)
{
	const char *v = pb_http_header(r, "Retry-After");
	if (!v || !*v)
		return -1;
	char *end;
	errno = 0;
	long s = strtol(v, &end, 10);
	if (end != v && !*end && !errno)
		return s < 0 ? 0 : s;
	/* an HTTP-date */
	time_t when = curl_getdate(v, NULL);
	if (when < 0)
		return -1;
	time_t now = time(NULL);
	return when > now ? (long)(when - now) : 0;
}

bool pb_http_outcome_unknown(const pb_http_resp *r, int rc)
{
	return rc != PB_OK && r->request_sent && r->status == 0;
}

bool pb_http_transient(const pb_http_resp *r, int rc)
{
	if (rc != PB_EIO)
		return false;
	switch (r->curl_code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR: /* handshake cut off, not a trust failure */
		return true;
	default:
		return false;
	}
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	if (sbuf_add(&x->body, data, n)) {
		x->too_big = true;
		return 0;
	}
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
		sbuf_reset(&x->hdrs); /* a new reply (after 100-continue or similar): keep only the last */
		return n;
	}
	const char *colon = memchr(data, ':', n);
	if (!colon)
		return n;
	const char *ne = colon, *v = colon + 1, *ve = data + n;
	while (ne > data && (ne[-1] == ' ' || ne[-1] == '\t'))
		ne--;
	while (v < ve && (*v == ' ' || *v == '\t'))
		v++;
	while (ve > v && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	if (sbuf_add(&x->hdrs, data, (size_t)(ne - data)) || sbuf_addc(&x->hdrs, '\0') ||
	    sbuf_add(&x->hdrs, v, (size_t)(ve - v)) || sbuf_addc(&x->hdrs, '\0')) {
		x->hdrs_too_big = true;
		return 0;
	}
	return n;
}

static void xfer_init(struct xfer *x, pb_http *h, const pb_http_req *req)
{
	memset(x, 0, sizeof *x);
	x->h = h;
	x->req = req;
	sbuf_init(&x->body, h->max_body);
	sbuf_init(&x->hdrs, PB_HTTP_HEADERS_MAX);
}

static void xfer_release(struct xfer *x)
{
	sbuf_release(&x->body);
	sbuf_release(&x->hdrs);
	curl_slist_free_all(x->hl);
	x->hl = NULL;
}

/* ---- public addresses only (pb_http_opts.public_only) ---- */

typedef struct net_prefix {
	unsigned char addr[16];
	unsigned bits;
} net_prefix;

static bool prefix_match(const unsigned char *a, const net_prefix *p)
{
	unsigned whole = p->bits / 8, rest = p->bits % 8;
	if (memcmp(a, p->addr, whole))
		return false;
	return !rest || ((a[whole] ^ p->addr[whole]) & (0xff << (8 - rest))) == 0;
}

static bool v4_internal(const unsigned char a[4])
{
	static const net_prefix v4[] = {
		{ { 0 }, 8 },                  /* "this network", 0.0.0.0 */
		{ { 10 }, 8 },                 /* private */
		{ { 100, 64 }, 10 },           /* shared address space (carrier NAT) */
		{ { 127 }, 8 },                /* loopback */
		{ { 169, 254 }, 16 },          /* link-local (cloud metadata services live here) */
		{ { 172, 16 }, 12 },           /* private */
		{ { 192, 0, 0 }, 24 },         /* IETF protocol assignments */
		{ { 192, 0, 2 }, 24 },         /* documentation */
		{ { 192, 168 }, 16 },          /* private */
		{ { 198, 18 }, 15 },           /* benchmarking */
		{ { 198, 51, 100 }, 24 },      /* documentation */
		{ { 203, 0, 113 }, 24 },       /* documentation */
		{ { 224 }, 4 },                /* multicast */
		{ { 240 }, 4 },                /* reserved, and the broadcast address */
	};
	for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++)
		if (prefix_match(a, &v4[i]))
			return true;
	return false;
}

static bool v6_internal(const unsigned char a[16])
{
	static const net_prefix v6[] = {
		{ { 0 }, 96 },                                 /* ::, ::1, IPv4-compatible (deprecated) */
		{ { 0, 0x64, 0xff, 0x9b, 0, 1 }, 48 },         /* local-use NAT64 */
		{ { 0x01 }, 64 },                              /* 100::/64 discard-only */
		{ { 0x20, 0x01, 0, 0 }, 32 },                  /* Teredo (an IPv4 address hidden inside) */
		{ { 0x20, 0x01, 0x0d, 0xb8 }, 32 },            /* documentation */
		{ { 0xfc }, 7 },                               /* unique local */
		{ { 0xfe, 0x80 }, 10 },                        /* link-local */
		{ { 0xfe, 0xc0 }, 10 },                        /* site-local (deprecated) */
		{ { 0xff }, 8 },                               /* multicast */
	};
	static const net_prefix mapped = { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff }, 96 };
	static const net_prefix nat64 = { { 0, 0x64, 0xff, 0x9b }, 96 };
	static const net_prefix sixto4 = { { 0x20, 0x02 }, 16 };
	/* IPv4 inside IPv6: judged by the IPv4 address */
	if (prefix_match(a, &mapped) || prefix_match(a, &nat64))
		return v4_internal(a + 12);
	if (prefix_match(a, &sixto4))
		return v4_internal(a + 2);
	for (size_t i = 0; i < sizeof v6 / sizeof v6[0]; i++)
		if (prefix_match(a, &v6[i]))
			return true;
	return false;
}

bool pb_addr_internal(const struct sockaddr *sa)
{
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return v4_internal((const unsigned char *)&in->sin_addr.s_addr);
	}
	if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		return v6_internal(in6->sin6_addr.s6_addr);
	}
	return true;
}

/* curl asks for a socket for each address it tries: refuse the internal ones (it then tries the
 * next; the transfer fails when none is left). */
static curl_socket_t open_public_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xfer *x = ud;
	if (purpose == CURLSOCKTYPE_IPCXN && pb_addr_internal(&a->addr)) {
		const void *raw = a->family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&a->addr)->sin6_addr
							: (const void *)&((struct sockaddr_in *)&a->addr)->sin_addr;
		if (!inet_ntop(a->family, raw, x->refused, sizeof x->refused))
			(void)xsnprintf(x->refused, sizeof x->refused, "an address of another family");
		x->address_refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

/* "https://host/path" of a URL without its query, for messages. */
static void url_for_msg(const char *url, char *out, size_t size)
{
	size_t n = strcspn(url, "?#");
	if (n >= size)
		n = size - 1;
	memcpy(out, url, n);
	out[n] = '\0';
}

static int setup(CURL *e, struct xfer *x, char *err)
{
	pb_http *h = x->h;
	const pb_http_req *req = x->req;
	if (!req->url || strncasecmp(req->url, "https://", 8) != 0)
		return pb_err(err, PB_EINVAL, "refusing a non-HTTPS URL (%.80s)", req->url ? req->url : "(null)");
	if (strlen(req->url) > PB_HTTP_URL_MAX)
		return pb_err(err, PB_ELIMIT, "URL longer than %d bytes", PB_HTTP_URL_MAX);
	curl_easy_reset(e);
	struct curl_slist *hl = NULL;
	for (size_t i = 0; i < req->nheaders; i++) {
		struct curl_slist *t = curl_slist_append(hl, req->headers[i]);
		if (!t) {
			curl_slist_free_all(hl);
			return pb_err(err, PB_ENOMEM, "out of memory");
		}
		hl = t;
	}
	/* no 100-continue round trip: our bodies are small and the server answers anyway */
	struct curl_slist *t = curl_slist_append(hl, "Expect:");
	if (!t) {
		curl_slist_free_all(hl);
		return pb_err(err, PB_ENOMEM, "out of memory");
	}
	x->hl = t;
	CURLcode c = CURLE_OK;
#define SET(opt, val) do { if (!c) c = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SHARE, h->share);
	SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : h->timeout_ms);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_USERAGENT, "pbiport/1");
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_HTTPHEADER, x->hl);
	SET(CURLOPT_PRIVATE, x);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	if (req->fresh_connection)
		SET(CURLOPT_FRESH_CONNECT, 1L);
	if (h->public_only) {
		SET(CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
		SET(CURLOPT_OPENSOCKETDATA, x);
		SET(CURLOPT_PROXY, "");   /* a proxy's address says nothing about the target's */
	}
	if (h->ca_store) {
		/* nothing for curl to load per connection: the callback installs the store */
		SET(CURLOPT_CAINFO, NULL);
		SET(CURLOPT_CAPATH, NULL);
		SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_trust);
		SET(CURLOPT_SSL_CTX_DATA, h);
	}
	const char *m = req->method ? req->method : "GET";
	if (!strcmp(m, "GET") && !req->body) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		if (!strcmp(m, "POST"))
			SET(CURLOPT_POST, 1L);
		else
			SET(CURLOPT_CUSTOMREQUEST, m);
		if (req->body || strcmp(m, "DELETE")) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
			SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		}
	}
#undef SET
	if (c)
		return pb_err(err, PB_EINTERNAL, "libcurl refused an option: %s", curl_easy_strerror(c));
	return PB_OK;
}

/* Connections opened by every client of this process (pb_http_connections_opened). */
static atomic_ulong connections_opened;

unsigned long pb_http_connections_opened(void)
{
	return atomic_load(&connections_opened);
}

/* Turns a finished transfer into resp and, when no answer came, one clear message. */
static int finish(struct xfer *x, CURL *e, CURLcode code, pb_http_resp *resp, char *err)
{
	pb_http_resp_release(resp);
	long status = 0, reqsize = 0;
	double secs = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &reqsize);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &secs);
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &resp->new_connections);
	if (resp->new_connections > 0)
		atomic_fetch_add(&connections_opened, (unsigned long)resp->new_connections);
	resp->curl_code = (int)code;
	resp->request_sent = reqsize > 0;
	resp->seconds = secs;
	resp->address_refused = x->address_refused;
	char where[256];
	url_for_msg(x->req->url, where, sizeof where);
	const char *m = x->req->method ? x->req->method : "GET";
	const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
	if (code == CURLE_OK) {
		resp->status = status;
		resp->body = sbuf_detach(&x->body, &resp->body_len);
		resp->hdrs = sbuf_detach(&x->hdrs, &resp->hdrs_len);
		if (!resp->body || !resp->hdrs)
			return pb_err(err, PB_ENOMEM, "out of memory");
		return PB_OK;
	}
	switch (code) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		return pb_err(err, PB_EIO, "TLS check failed for %s: %s; the server certificate is not "
			      "trusted%s%s%s", where, detail,
			      x->h->ca_extra ? " by the system CAs nor by PBIPORT_CA_BUNDLE=" : "",
			      x->h->ca_extra ? x->h->ca_extra : "",
			      x->h->ca_extra ? "" : " (if it uses a private CA, point PBIPORT_CA_BUNDLE at that CA's PEM file)");
	case CURLE_COULDNT_RESOLVE_HOST:
		return pb_err(err, PB_EIO, "%s %s: cannot resolve the host name (%s)", m, where, detail);
	case CURLE_COULDNT_CONNECT:
		if (x->address_refused)
			return pb_err(err, PB_EFORBIDDEN, "%s %s: refused to connect to %s: the host resolves to a loopback, "
				      "private or link-local address", m, where, x->refused);
		return pb_err(err, PB_EIO, "%s %s: cannot connect (%s)", m, where, detail);
	case CURLE_OPERATION_TIMEDOUT:
		return pb_err(err, PB_EIO, "%s %s: no complete answer in time (%s)", m, where, detail);
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
		return pb_err(err, PB_EIO, "%s %s: the connection dropped before a complete answer (%s)",
			      m, where, detail);
	case CURLE_WRITE_ERROR:
		if (x->too_big)
			return pb_err(err, PB_ELIMIT, "%s %s: response body larger than %zu bytes", m, where,
				      x->h->max_body);
		if (x->hdrs_too_big)
			return pb_err(err, PB_ELIMIT, "%s %s: response headers larger than %u bytes", m, where,
				      PB_HTTP_HEADERS_MAX);
		return pb_err(err, PB_EIO, "%s %s: %s", m, where, detail);
	default:
		return pb_err(err, PB_EIO, "%s %s: %s", m, where, detail);
	}
}

int pb_http_do(pb_http *h, const pb_http_req *req, pb_http_resp *resp, char *err)
{
	memset(resp, 0, sizeof *resp);
	struct xfer x;
	xfer_init(&x, h, req);
	int rc = setup(h->easy, &x, err);
	if (!rc) {
		CURLcode code = curl_easy_perform(h->easy);
		rc = finish(&x, h->easy, code, resp, err);
	}
	/* the easy handle must not point at this call's stack (headers, error buffer, callback
	 * data) between calls; its connections live on in the share object */
	curl_easy_reset(h->easy);
	xfer_release(&x);
	return rc;
}

enum job_state { J_QUEUED, J_WAIT, J_RUN, J_DONE };

struct job {
	enum job_state state;
	long long ready_at;
	CURL *e;
	struct xfer x;
};

/* Hands a finished transfer to the callback; returns <0 to stop the batch. */
static int job_complete(pb_http *h, struct job *j, size_t idx, pb_http_req *reqs, CURLcode code, int setup_rc,
			const char *setup_err, pb_http_done_fn fn, void *ctx, size_t *active, size_t *done, char *err)
{
	pb_http_resp resp;
	memset(&resp, 0, sizeof resp);
	char xerr[PB_ERR_MAX] = "";
	int rc = setup_rc;
	if (!setup_rc)
		rc = finish(&j->x, j->e, code, &resp, xerr);
	else
		pb_err(xerr, rc, "%s", setup_err);
	xfer_release(&j->x);
	long delay = 0;
	int action = fn(ctx, idx, &resp, rc, xerr, &delay, err);
	pb_http_resp_release(&resp);
	(void)h;
	(void)reqs;
	if (action < 0)
		return action;
	if (action == PB_HTTP_AGAIN) {
		j->state = J_WAIT;
		j->ready_at = pb_mono_ms() + (delay > 0 ? delay : 0);
		return 0;
	}
	j->state = J_DONE;
	if (j->e) {
		curl_easy_cleanup(j->e);
		j->e = NULL;
	}
	(*active)--;
	(*done)++;
	return 0;
}

int pb_http_run_many(pb_http *h, pb_http_req *reqs, size_t n, int parallel,
		     pb_http_done_fn fn, void *ctx, char *err)
{
	if (n == 0)
		return PB_OK;
	if (parallel < 1)
		parallel = 1;
	if (parallel > PB_HTTP_PARALLEL_MAX)
		parallel = PB_HTTP_PARALLEL_MAX;
	struct job *jobs = calloc(n, sizeof *jobs);
	if (!jobs)
		return pb_err(err, PB_ENOMEM, "out of memory");
	int rc = PB_OK;
	size_t next = 0, active = 0, done = 0, lo = 0;
	while (done < n) {
		if (h->stop && *h->stop) {
			rc = pb_err(err, PB_EIO, "stopped: %zu of %zu calls were done", done, n);
			goto out;
		}
		long long now = pb_mono_ms();
		/* jobs end roughly in order: scan only from the oldest unfinished one */
		while (lo < next && jobs[lo].state == J_DONE)
			lo++;
		while (next < n && active < (size_t)parallel) {
			jobs[next].state = J_WAIT;
			jobs[next].ready_at = now;
			next++;
			active++;
		}
		size_t running = 0;
		long long soonest = -1;
		for (size_t i = lo; i < next; i++) {
			struct job *j = &jobs[i];
			if (j->state == J_WAIT && j->ready_at <= now) {
				char serr[PB_ERR_MAX] = "";
				int src = PB_OK;
				if (!j->e && !(j->e = curl_easy_init()))
					src = pb_err(serr, PB_ENOMEM, "libcurl: out of memory");
				xfer_init(&j->x, h, &reqs[i]);
				if (!src)
					src = setup(j->e, &j->x, serr);
				if (!src && curl_multi_add_handle(h->multi, j->e) != CURLM_OK)
					src = pb_err(serr, PB_EINTERNAL, "libcurl refused a transfer");
				if (src) {
					if ((rc = job_complete(h, j, i, reqs, CURLE_OK, src, serr, fn, ctx, &active, &done, err)))
						goto out;
					continue;
				}
				j->state = J_RUN;
			}
			if (j->state == J_RUN)
				running++;
			else if (j->state == J_WAIT && (soonest < 0 || j->ready_at < soonest))
				soonest = j->ready_at;
		}
		int still = 0;
		if (running)
			curl_multi_perform(h->multi, &still);
		CURLMsg *msg;
		int left;
		bool finished_any = false;
		while ((msg = curl_multi_info_read(h->multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			CURLcode code = msg->data.result;
			struct xfer *x = NULL;
			curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
			curl_multi_remove_handle(h->multi, e);
			size_t idx = (size_t)(x->req - reqs);
			finished_any = true;
			if ((rc = job_complete(h, &jobs[idx], idx, reqs, code, PB_OK, NULL, fn, ctx, &active, &done, err)))
				goto out;
		}
		if (done == n || finished_any)
			continue;
		long wait = 1000;
		if (soonest >= 0) {
			long long d = soonest - pb_mono_ms();
			wait = d < 0 ? 0 : (d > 1000 ? 1000 : (long)d);
		}
		if (running)
			curl_multi_poll(h->multi, NULL, 0, (int)wait, NULL);
		else
			pb_sleep_ms(wait);
	}
out:
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].e) {
			if (jobs[i].state == J_RUN) {
				curl_multi_remove_handle(h->multi, jobs[i].e);
				xfer_release(&jobs[i].x);
			}
			curl_easy_cleanup(jobs[i].e);
		}
	}
	free(jobs);
	return rc;
}
