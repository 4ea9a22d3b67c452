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
    count        INTEGER NOT NULL,
    sum_seconds  REAL NOT NULL,
    b0           INTEGER NOT NULL DEFAULT 0,
    b1           INTEGER NOT NULL DEFAULT 0,
    b2           INTEGER NOT NULL DEFAULT 0,
    b3           INTEGER NOT NULL DEFAULT 0,
    b4           INTEGER NOT NULL DEFAULT 0,
    b5           INTEGER NOT NULL DEFAULT 0,
    b6           INTEGER NOT NULL DEFAULT 0,
    b7           INTEGER NOT NULL DEFAULT 0,
    b8           INTEGER NOT NULL DEFAULT 0,
    b9           INTEGER NOT NULL DEFAULT 0,
    b10          INTEGER NOT NULL DEFAULT 0,
    b11          INTEGER NOT NULL DEFAULT 0,
    b12          INTEGER NOT NULL DEFAULT 0,
    b13          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (route, method, status)
);
