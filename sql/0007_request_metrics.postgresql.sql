-- PostgreSQL's version of 0007_request_metrics.sql (runtime/db.h: it replaces that file on PostgreSQL).
-- The same table; the counters are BIGINT (SQLite's INTEGER has 64 bits, PostgreSQL's 32, and every
-- host of a deployment adds to the same rows) and sum_seconds is DOUBLE PRECISION (PostgreSQL's
-- REAL has 4 bytes, SQLite's 8).

-- Request metrics in one row per (route, method, status), so recording a request is one
-- UPSERT touching one table (a page or two in the WAL) instead of three tables: this runs
-- after every request, so it is most of the per-request write cost. Replaces the three
-- metrics tables of 0001. Columns b0..b13 count requests per duration bucket
-- (non-cumulative; bounds in runtime/metrics.c, b13 = above the last bound).

DROP TABLE metrics_requests;
DROP TABLE metrics_durations;
DROP TABLE metrics_duration_sums;

CREATE TABLE request_metrics (
    route        TEXT NOT NULL,
    method       TEXT NOT NULL,
    status       INTEGER NOT NULL,
    count        BIGINT NOT NULL,
    sum_seconds  DOUBLE PRECISION NOT NULL,
    b0           BIGINT NOT NULL DEFAULT 0,
    b1           BIGINT NOT NULL DEFAULT 0,
    b2           BIGINT NOT NULL DEFAULT 0,
    b3           BIGINT NOT NULL DEFAULT 0,
    b4           BIGINT NOT NULL DEFAULT 0,
    b5           BIGINT NOT NULL DEFAULT 0,
    b6           BIGINT NOT NULL DEFAULT 0,
    b7           BIGINT NOT NULL DEFAULT 0,
    b8           BIGINT NOT NULL DEFAULT 0,
    b9           BIGINT NOT NULL DEFAULT 0,
    b10          BIGINT NOT NULL DEFAULT 0,
    b11          BIGINT NOT NULL DEFAULT 0,
    b12          BIGINT NOT NULL DEFAULT 0,
    b13          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route, method, status)
);
