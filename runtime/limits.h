/* Every ceiling pbiport enforces, in one place. */
#ifndef PBIPORT_LIMITS_H
#define PBIPORT_LIMITS_H

#define PB_ERR_MAX              512                   /* one error message line */
#define PB_CONTRACT_MAX_BYTES   (16u * 1024 * 1024)   /* an ODCS contract document */
#define PB_CONTRACT_MAX_DEPTH   64                    /* YAML/JSON nesting */
#define PB_CONTRACT_MAX_TABLES  10000
#define PB_CONTRACT_MAX_COLUMNS 4000                  /* per table */
#define PB_NAME_MAX_BYTES       1024                  /* a table/column name */
#define PB_CONTRACT_MAX_NODES   1000000               /* YAML/JSON values, aliases counted expanded */
#define PB_CONTRACT_MAX_SERVERS 1000
#define PB_CONTRACT_MAX_RELATIONSHIPS 5000
#define PB_CONTRACT_MAX_WARNINGS 1000                 /* then one "more warnings" line */
#define PB_TMDL_MAX_FILE_BYTES  (64u * 1024 * 1024)   /* one .tmdl file read by the parser */
#define PB_TMDL_MAX_FILES       100000
#define PB_TMDL_MAX_DEPTH       64                    /* indentation levels */
#define PB_TMDL_MAX_MODEL_BYTES (512u * 1024 * 1024)  /* parser memory for one model (all files) */
#define PB_TMDL_MAX_DIR_DEPTH   16                    /* folder nesting scanned for .tmdl files */
#define PB_RENDER_MAX_BYTES     (512u * 1024 * 1024)  /* all files one render may produce */
#define PB_LUA_MEM_MAX          (256u * 1024 * 1024)  /* Lua heap per render */
#define PB_LUA_TIME_MAX_MS      5000                  /* CPU time per render, upper bound */
/* Default render budget, scaled to the contract (core/lang/render.c set_limits): instructions
 * base + per table + per column; CPU-time backstop base + per column. */
#define PB_LUA_INSTR_BASE       10000000LL
#define PB_LUA_INSTR_PER_TABLE  5000LL
#define PB_LUA_INSTR_PER_COLUMN 1000LL
#define PB_LUA_TIME_BASE_MS     300LL
#define PB_LUA_TIME_PER_COLUMN_US 30LL
/* The per-column part of that deadline is multiplied by how much slower than the machine these
 * values were set on the process runs Lua (runtime/lua_sandbox.c sandbox_time_scale_pct: a fixed
 * loop that took PB_LUA_CALIBRATION_REF_US of CPU there), at most PB_LUA_TIME_SCALE_MAX_PCT
 * percent, the whole never past PB_LUA_TIME_MAX_MS; the base, which bounds a hostile template on
 * a small contract, stays. PBIPORT_RENDER_TIME_LIMIT_MS replaces the deadline (for profiling),
 * at most PB_RENDER_TIME_LIMIT_MAX_MS. */
#define PB_LUA_CALIBRATION_REF_US 225LL
#define PB_LUA_TIME_SCALE_MAX_PCT 800
#define PB_RENDER_TIME_LIMIT_MAX_MS 3600000L
/* The watchdog (runtime/lua_sandbox.c): a CPU-time timer of the rendering thread that stops the
 * template at its time limit even inside a library call, and ends the process when a call still
 * has not returned this much CPU time later (exit status PB_LUA_WATCHDOG_EXIT, which
 * deploy/systemd/pbiport-pool restarts without counting it as a start-up failure). */
#define PB_LUA_WATCHDOG_GRACE_MS 2000
#define PB_LUA_WATCHDOG_EXIT    70                    /* EX_SOFTWARE */
#define PB_LUA_PRINT_MAX        1000                  /* one print() log message, escaped */
#define PB_LUA_PRINT_LINES_MAX  100                   /* print() lines logged per sandbox */
#define PB_LUA_SORT_MAX         1000000               /* elements table.sort accepts */
#define PB_LUA_PATTERN_STEPS    2e8                   /* worst-case matcher steps of one string.find/gsub */
/* Import filter rules (core/flow/ingest.c), in the same sandbox as templates: CPU time of one call
 * (a rule is asked once per workspace, model and report), and of all calls of one run together. */
#define PB_FILTER_RULE_TIME_MS  1000
#define PB_FILTER_RUN_TIME_MS   60000
/* One attempt of a job, wall clock from its claim: past it the worker's heartbeat stops renewing
 * the lease and fails the job (time_limit), whatever its thread is doing. A kind that waits longer
 * on purpose (a refresh followed for wait_timeout) raises its own limit (job_extend_time_limit). */
#define PB_JOB_TIME_LIMIT_MS    (6LL * 3600 * 1000)
#define PB_LUA_MAX_SOURCE_BYTES (1u * 1024 * 1024)    /* one template or module file */
#define PB_TEMPLATE_MAX_DIRS    32                    /* folders on the template search path */
/* Compiled templates kept per process (runtime/lua_sandbox.c): files, and bytes of bytecode. */
#define PB_LUA_CACHE_CHUNKS     128
#define PB_LUA_CACHE_BYTES      (16u * 1024 * 1024)
#define PB_RENDER_MAX_PATH      4096                  /* one output file path */

/* outbound HTTP (runtime/http) */
#define PB_HTTP_BODY_MAX        (256u * 1024 * 1024)  /* one response body */
#define PB_HTTP_HEADERS_MAX     (64u * 1024)          /* all response header lines of one reply */
#define PB_HTTP_URL_MAX         16384                 /* one request URL */
#define PB_HTTP_CONNECT_TIMEOUT_MS 10000
#define PB_HTTP_TIMEOUT_MS      120000                /* whole transfer */
#define PB_HTTP_PARALLEL_MAX    64                    /* concurrent transfers of one batch */
#define PB_CA_BUNDLE_MAX        (8u * 1024 * 1024)    /* system + extra CA PEM text */
/* secrets (runtime/crypto) */
#define PB_KEYRING_MAX_KEYS     16
#define PB_SECRET_MAX_BYTES     (1u * 1024 * 1024)    /* one sealed secret's plaintext */
/* Microsoft clients (msapi/) */
#define PB_MSAPI_MAX_PAGES      100000                /* pages one list may follow */
#define PB_MSAPI_MAX_ITEMS      1000000               /* items one list may return */
#define PB_MSAPI_MAX_ATTEMPTS   8                     /* tries of one call (retries + 1) */
#define PB_MSAPI_WAIT_BUDGET_MS 120000                /* default total back-off / Retry-After wait per call */
#define PB_MSAPI_LRO_MAX_MS     (15 * 60 * 1000)      /* default total time to follow one long-running operation */
#define PB_MSAPI_REDIRECTS_MAX  3
#define PB_SCAN_BATCH_MAX       100                   /* workspace ids per getInfo (Power BI rule) */
#define PB_SCAN_PARALLEL_MAX    16                    /* scans in flight (Power BI rule) */
#define PB_SCAN_FIRST_POLL_MIN_MS 100                 /* first scanStatus of the smallest scan, at the earliest */

/* HTTP runtime (runtime/request, router, db, auth) */
#define PB_BODY_MAX_DEFAULT     (10u * 1024 * 1024)   /* PBIPORT_MAX_BODY when unset */
/* Request body bounds of the routes (handlers/routes.c): what the largest honest body of each
 * kind needs, with room to spare. */
#define PB_BODY_SMALL_MAX       4096u                 /* a few fields: a cancel, a schedule */
#define PB_BODY_JSON_MAX        (64u * 1024)          /* an ordinary JSON request: publish, refresh, events, ... */
#define PB_BODY_INTEGRATION_MAX (256u * 1024)         /* an integration: its filter lists can be long */
#define PB_BODY_PUSH_DATASET_MAX (1024u * 1024)       /* a push dataset: up to 75 tables x 75 columns */
#define PB_BODY_PAGE_FORM_MAX   (64u * 1024)          /* a page form of a few fields and buttons */
#define PB_BODY_WIZARD_MAX      (512u * 1024)         /* Add Integration: six lists of 200 patterns of 256 bytes */
#define PB_ENV_MAX_BYTES        (64u * 1024)          /* all CGI/FastCGI params of one request */
#define PB_ENV_MAX_VARS         512
#define PB_PATH_MAX_BYTES       4096                  /* request path */
#define PB_PATH_MAX_SEGMENTS    32
#define PB_QUERY_MAX_BYTES      8192                  /* QUERY_STRING */
#define PB_QUERY_MAX_PARAMS     64
#define PB_ROUTE_MAX_CAPTURES   4
#define PB_RESPONSE_MAX_BYTES   (256u * 1024 * 1024)  /* one response body */
#define PB_RESPONSE_HEADERS_MAX (16u * 1024)
#define PB_REQUEST_ID_MAX       64                    /* incoming X-Request-Id kept when safe */
#define PB_NAME_FIELD_MAX       128                   /* org/user/team names */
#define PB_KEPT_IDENTITIES      8                     /* identities a thread keeps (core/store/identity.c) */
#define PB_STMT_CACHE_MAX       256                   /* prepared statements kept per process (the program has ~190) */
#define PB_DB_BUSY_TIMEOUT_MS   5000
/* A statement (outside a transaction) or a db_transaction that met a concurrent writer (busy,
 * serialization failure, deadlock) is run again at most this many times, after a short random
 * pause growing up to PB_DB_RETRY_PAUSE_MS; then the answer is 503 with Retry-After. */
#define PB_DB_RETRY_MAX         5
#define PB_DB_RETRY_PAUSE_MS    50
#define PB_DB_RETRY_AFTER_S     2                     /* Retry-After of a 503 the database caused */
#define PB_MIGRATION_MAX_BYTES  (1u * 1024 * 1024)    /* one sql/NNNN_*.sql file */
#define PB_MIGRATIONS_MAX       9999
#define PB_JSON_MAX_DEPTH       64                    /* request bodies */
#define PB_JSON_OUT_MAX_DEPTH   2048                  /* nesting of a JSON value pbiport writes */
#define PB_LOG_LINE_MAX         (64u * 1024)          /* one JSON log line on stderr */
#define PB_LOG_BATCH_BYTES      (16u * 1024)          /* request lines written together under load */
#define PB_LIST_MAX_ITEMS       1000                  /* one catalog list response */
#define PB_METRICS_MAX_BYTES    (4u * 1024 * 1024)    /* /metrics text */
/* Request counters wait in the process and are written in one transaction when the process has
 * nothing queued, or at the latest after this many requests or milliseconds (the most a crashed
 * process loses), and at exit. */
#define PB_METRICS_FLUSH_REQUESTS 256
#define PB_METRICS_FLUSH_MS     1000
#define PB_METRICS_BATCH_CELLS  64                    /* distinct route+method+status between flushes */
#define PB_DB_MMAP_BYTES        268435456ll           /* 256 MiB of the database read through a mapping, not pread */

/* Connect Power BI (core/store/connections, core/flow/pbi_session, handlers/powerbi_connect) */
#define PB_PBI_REFRESH_MARGIN_S 300                   /* refresh an access token expiring within 5 minutes */
#define PB_OAUTH_STATE_TTL_S    600                   /* a started sign-in is valid 10 minutes */
#define PB_PBI_CLAIM_MS         60000                 /* a refresher's claim on a connection row (crash recovery) */
#define PB_PBI_WAIT_MS          90000                 /* longest wait for another process's refresh */
#define PB_PBI_POLL_MS          50                    /* re-read interval while another process refreshes */
#define PB_RETURN_TO_MAX        1024                  /* return_to path of /powerbi/connect */
#define PB_OAUTH_STATE_MAX      512                   /* the state parameter */
#define PB_OAUTH_CODE_MAX       8192                  /* the authorization code */
#define PB_PBI_SECRET_MAX       1024                  /* a client secret typed into the settings */
#define PB_PBI_ID_MAX           256                   /* tenant id / client id */
#define PB_SETTINGS_BODY_MAX    (64u * 1024)          /* PUT /api/settings/powerbi body */

/* Sign in with Microsoft and browser sessions (core/flow/sso, core/store/sessions, runtime/jwt) */
#define PB_SESSION_IDLE_DEFAULT_S     (8 * 3600)        /* PBIPORT_SESSION_IDLE_TIMEOUT: a session unused this long ends */
#define PB_SESSION_LIFETIME_DEFAULT_S (7 * 86400)       /* PBIPORT_SESSION_LIFETIME: a session ends this long after sign-in */
#define PB_SESSION_RENEW_S      60                    /* last seen moves at most this often (no write per request) */
#define PB_SESSION_LIST_MAX     100                   /* sessions GET /api/me/sessions shows */
#define PB_USER_AGENT_MAX       64                    /* the user agent summary kept with a session */
#define PB_OIDC_KEYS_TTL_S      86400                 /* the provider's configuration and keys are fetched again after a day */
#define PB_OIDC_REFETCH_MIN_S   60                    /* an unknown key id fetches the keys again at most once a minute */
#define PB_OIDC_DOC_MAX         (256u * 1024)         /* an OpenID configuration or key set as fetched */
#define PB_JWT_MAX_BYTES        (32u * 1024)          /* one ID token */
#define PB_JWT_SKEW_S           120                   /* clock difference allowed on exp / nbf / iat */
#define PB_JWKS_MAX_KEYS        64                    /* keys of one key set looked at */
#define PB_RSA_MIN_BITS         2048                  /* smallest RSA key a signature is accepted from */

/* Power Query M lineage (core/lang/mlineage) */
#define PB_MLINEAGE_MAX_BYTES   (1u * 1024 * 1024)    /* one M expression */
#define PB_MLINEAGE_MAX_DEPTH   200                   /* nesting of M syntax and evaluation */
#define PB_MLINEAGE_MAX_SOURCES 1000                  /* distinct sources of one expression */
#define PB_MLINEAGE_MAX_MEMORY  (64u * 1024 * 1024)   /* working memory of one parse */
#define PB_MLINEAGE_MAX_PARAM_DEPTH 16                /* shared expressions followed in a chain */
#define PB_MLINEAGE_MAX_EVALS   2000000               /* evaluation steps of one parse */
#define PB_MLINEAGE_MAX_ALTS    16                    /* values one unknown condition may choose among */
/* lineage graph (core/flow/lineage) */
#define PB_LINEAGE_DEPTH_DEFAULT 3
#define PB_LINEAGE_DEPTH_MAX    10
#define PB_LINEAGE_MAX_NODES    5000                  /* nodes one lineage answer may hold */

/* import integrations (core/store/integrations, core/flow/ingest) */
#define PB_FILTER_MAX_PATTERNS  200                   /* include or exclude entries of one list */
#define PB_FILTER_PATTERN_MAX_BYTES 256               /* one wildcard pattern */
#define PB_FILTER_PATTERN_MAX_STARS 8                 /* '*' per pattern (bounds matching work) */
#define PB_INTEGRATION_RUNS_KEPT 10                   /* run history per integration */
#define PB_INGEST_WORKSPACES_MAX 100000               /* workspaces one run may scan */
#define PB_SCAN_GETINFO_PER_HOUR 500                  /* Power BI's getInfo limit per tenant */

/* publish to Power BI (core/flow/publish) */
#define PB_PUBLISH_NAME_MAX     256                   /* a semantic model name typed into a publish */
#define PB_PUBLISH_SUFFIX_MAX   1000                  /* " (2)" ... " (N)" tried before giving up */
#define PB_PUBLISH_CONN_NAME_MAX 200                  /* Fabric connection displayName limit */
#define PB_PUBLISH_ATTEMPTS     8                     /* tries of one publish job (retries + 1) */

/* refresh (core/flow/refresh) */
#define PB_REFRESH_TIMEOUT_S_DEFAULT (4 * 3600)       /* PBIPORT_REFRESH_TIMEOUT: follow one refresh this long */
#define PB_REFRESH_POLL_MIN_MS  2000                  /* first history poll interval (doubles) */
#define PB_REFRESH_POLL_MAX_MS  60000                 /* longest history poll interval */
#define PB_REFRESH_FIND_TRIES   10                    /* history reads to find a triggered refresh */
#define PB_REFRESH_HISTORY_TOP  60                    /* entries read (Power BI keeps 60) */
#define PB_REFRESH_FANOUT_MAX   200                   /* models one event may refresh */
#define PB_REFRESH_OBJECTS_MAX  1000                  /* tables/partitions one enhanced refresh names */
#define PB_REFRESH_RETRY_MAX    100                   /* enhanced refresh retryCount (Power BI: 24 h in all) */
#define PB_REFRESH_PARALLELISM_MAX 1000               /* enhanced refresh maxParallelism */
/* push datasets (core/flow/push) */
#define PB_PUSH_MAX_TABLES      75                    /* Power BI push dataset limit */
#define PB_PUSH_MAX_COLUMNS     75                    /* per table, Power BI limit */
#define PB_PUSH_NAME_MAX_CHARS  100                   /* dataset, table and column names (pbiport's bound) */
#define PB_PUSH_STRING_MAX_CHARS 4000                 /* one string value, Power BI limit */
#define PB_PUSH_ROW_MAX_BYTES   (1u * 1024 * 1024)    /* one input row / CSV record */
#define PB_PUSH_BODY_MAX        (256u * 1024 * 1024)  /* the rows route's own body bound */
#define PB_PUSH_RATE_MARGIN_MS  1000                  /* added to limiter waits: clocks differ */
#define PB_PUSH_THROTTLE_ROUNDS 50                    /* 429 answers one chunk may get before the job retries later */
#define PB_PUSH_INFLIGHT_STALE_MS 120000              /* an in-flight request older than this is over (PBIPORT_PUSH_INFLIGHT_S) */
#define PB_PUSH_OUTCOME_POLL_MS 1000                  /* asking again whether a chunk was added while other rows are sent */
#define PB_PUSH_OUTCOME_RETRY_MS 5000                 /* ... after Power BI could not count the table's rows */
#define PB_PUSH_WAIT_INLINE_MS  120000                /* longer limiter waits put the push job back in the queue */
#define PB_PUSH_JOB_ATTEMPTS    50                    /* tries of one push job (each long wait uses one) */
#define PB_PUSH_SPOOL_ORPHAN_S  3600                  /* spooled rows no job owns are dropped after an hour */
#define PB_PUSH_SPOOL_SWEEP_MS  60000                 /* how often a worker looks for them */
#define PB_PUSH_CHUNK_BODY_MAX  (512u * 1024 * 1024 + 64) /* one POST rows body: a reader chunk (bounded at 512 MiB) + {"rows":} */

/* webhooks (core/flow/webhooks, core/store/webhooks, handlers/webhooks) */
#define PB_BODY_WEBHOOK_MAX     (16u * 1024)          /* POST / PATCH /api/webhooks: a URL, a few events, a secret */
#define PB_WEBHOOKS_MAX         100                   /* webhooks of one organization */
#define PB_WEBHOOK_URL_MAX      2048                  /* one webhook URL */
#define PB_WEBHOOK_SECRET_MIN   16                    /* characters of a secret an owner chooses */
#define PB_WEBHOOK_SECRET_MAX   256
#define PB_WEBHOOK_SECRET_BYTES 32                    /* random bytes of a generated secret */
#define PB_WEBHOOK_PAYLOAD_MAX  (256u * 1024)         /* one event's body */
#define PB_WEBHOOK_CONNECT_TIMEOUT_MS 3000            /* a receiver that is down costs a worker at most this ... */
#define PB_WEBHOOK_TIMEOUT_MS   10000                 /* ... and one that is slow this, per attempt */
#define PB_WEBHOOK_RESPONSE_MAX (64u * 1024)          /* a receiver's answer read (its first line is kept) */
#define PB_WEBHOOK_ATTEMPTS     12                    /* tries of one delivery: about 2.4 h of back-off in all */
#define PB_WEBHOOK_BACKOFF_BASE_MS 5000               /* wait after the first failed try, doubling ... */
#define PB_WEBHOOK_BACKOFF_MAX_MS (3600L * 1000)      /* ... up to an hour */
#define PB_WEBHOOK_RETRY_AFTER_MAX_S 3600             /* longest Retry-After of a receiver honoured as given */
#define PB_WEBHOOK_DELIVERIES_KEPT 200                /* ended deliveries kept per webhook */
#define PB_WEBHOOK_DELIVERIES_LIST 50                 /* deliveries GET /api/webhooks/{id}/deliveries shows */

/* web pages (runtime/page_render, page_form, page_csrf) */
#define PB_PAGE_LUA_MEM_MAX     (64u * 1024 * 1024)   /* Lua heap of one page render */
#define PB_PAGE_LUA_TIME_MS     1000                  /* CPU time of one page render */
#define PB_PAGE_VIEW_MAX_DEPTH  32                    /* nesting of the view handed to a page template */
#define PB_PAGE_MAX_BYTES       (16u * 1024 * 1024)   /* one rendered page */
#define PB_STATIC_MAX_BYTES     (4u * 1024 * 1024)    /* one file under web/static/ */
#define PB_STATIC_MAX_AGE_S     600                   /* browsers reuse a static file this long, then revalidate */

#endif
