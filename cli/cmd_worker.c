/* `pbiport worker [--once] [--id NAME] [--poll-ms N] [--lease-seconds N]`: runs due
 * jobs and schedules. With --once it runs what is due now and exits (cron or
 * cloud-function deployments); otherwise it loops until SIGTERM/SIGINT, finishing
 * the job at hand first. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/flow/worker.h"
#include "runtime/config.h"
#include "runtime/db.h"
#include "runtime/limits.h"
#include "runtime/log.h"
#include "runtime/timeutil.h"

static volatile int stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: pbiport worker [--once] [--id NAME] [--poll-ms N] [--lease-seconds N]\n");
	return 2;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cmd_worker(int argc, char **argv)
{
	pb_worker_opts opts = { .stop = &stop_requested };
	long lease_s = 60;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once"))
			opts.once = true;
		else if (!strcmp(argv[i], "--id") && i + 1 < argc)
			opts.worker_id = argv[++i];
		else if (!strcmp(argv[i], "--poll-ms") && i + 1 < argc) {
			if (parse_long(argv[++i], 10, 600000, &opts.poll_ms))
				return usage();
		} else if (!strcmp(argv[i], "--lease-seconds") && i + 1 < argc) {
			if (parse_long(argv[++i], 3, 3600, &lease_s))
				return usage();
		} else
			return usage();
	}
	opts.lease_ms = lease_s * 1000;

	pb_config cfg;
	pb_db *db = NULL;
	char err[PB_ERR_MAX];
	int code = 1;
	if (config_load(&cfg, err)) {
		fprintf(stderr, "pbiport worker: %s\n", err);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* A database that cannot be reached yet (PostgreSQL starting or restarting) is waited for, as
	 * the loop waits for it later: a worker started with it, or restarted by a supervisor meanwhile,
	 * does not end. With --once the failure is the answer. */
	int rc;
	while ((rc = db_open(cfg.db_path, false, &db, err)) == PB_EUNAVAIL && !opts.once && !stop_requested) {
		log_event("warn", NULL, "worker: %s: trying again in %d s", err, PB_DB_RETRY_AFTER_S);
		pb_sleep_interruptible(PB_DB_RETRY_AFTER_S * 1000L, &stop_requested);
	}
	if (rc == PB_EUNAVAIL && stop_requested) {   /* stopped while waiting: nothing to finish */
		code = 0;
		goto out;
	}
	if (rc || db_unmap(db, err) || db_check_schema(db, cfg.sql_dir, err)) {
		fprintf(stderr, "pbiport worker: %s\n", err);
		goto out;
	}
	long ran = 0;
	if (worker_run(db, &cfg, &opts, &ran, err)) {
		fprintf(stderr, "pbiport worker: %s\n", err);
		goto out;
	}
	if (opts.once)
		fprintf(stderr, "pbiport worker: ran %ld job%s\n", ran, ran == 1 ? "" : "s");
	code = 0;
out:
	db_close(db);
	config_release(&cfg);
	return code;
}
