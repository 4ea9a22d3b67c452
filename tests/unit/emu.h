/* Test helper (header-only, shared by test_http.c and test_msapi.c): starts the Power BI
 * emulator (tests/emulator/server.py) in a temporary state folder, reads its "READY <url>"
 * line, makes a configuration (e->cfg: the PBIPORT_*_URL base URLs and PBIPORT_CA_BUNDLE, as
 * runtime/config.c would read them) that points at it, and talks to its control API.
 * When python3 or the emulator is missing, emu_start returns 1 and the test prints SKIP. */
#ifndef PBIPORT_TEST_EMU_H
#define PBIPORT_TEST_EMU_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/config.h"
#include "runtime/http.h"
#include "runtime/util.h"

#define EMU_FN __attribute__((unused)) static

struct emu {
	pid_t pid;
	char dir[128];
	char url[512];
	char ca[256];
	char src[512];
	char entra[600], fabric[600], powerbi[600], graph[600];
	pb_config cfg;      /* defaults + the base URLs and CA above (borrowed: never released) */
	pb_http *http;      /* trusts the emulator's CA; for control calls */
};

/* Points cfg's base URLs and extra CA at the emulator (borrowed from e). */
EMU_FN void emu_config(const struct emu *e, pb_config *cfg)
{
	cfg->entra_url = e->cfg.entra_url;
	cfg->fabric_url = e->cfg.fabric_url;
	cfg->powerbi_url = e->cfg.powerbi_url;
	cfg->graph_url = e->cfg.graph_url;
	cfg->ca_bundle = e->cfg.ca_bundle;
}


EMU_FN const char *emu_src_dir(void)
{
	const char *s = getenv("PBIPORT_SRC");
	return s && *s ? s : ".";
}

/* 0 started, 1 skip (message printed), -1 failure. extra: more argv words or NULL. */
EMU_FN int emu_start(struct emu *e, const char *const *extra)
{
	memset(e, 0, sizeof *e);
	e->pid = -1;
	char server[600];
	snprintf(server, sizeof server, "%s/tests/emulator/server.py", emu_src_dir());
	snprintf(e->src, sizeof e->src, "%s", emu_src_dir());
	if (access(server, R_OK)) {
		printf("SKIP: emulator %s not found; emulator tests skipped\n", server);
		return 1;
	}
	if (system("command -v python3 >/dev/null 2>&1")) {
		printf("SKIP: python3 not found; emulator tests skipped\n");
		return 1;
	}
	snprintf(e->dir, sizeof e->dir, "/tmp/pbiport-emu-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	int fds[2];
	if (pipe(fds))
		return -1;
	const char *argv[32];
	int n = 0;
	argv[n++] = "python3";
	argv[n++] = server;
	argv[n++] = "--state-dir";
	argv[n++] = e->dir;
	argv[n++] = "--port";
	argv[n++] = "0";
	for (int i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0 && !getenv("PBIPORT_EMU_LOG"))
			dup2(devnull, 2);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	e->pid = pid;
	char line[512];
	size_t len = 0;
	/* wait up to 60 s for "READY <url>\n" */
	for (int waited = 0; waited < 600 && len < sizeof line - 1;) {
		struct pollfd p = { fds[0], POLLIN, 0 };
		int r = poll(&p, 1, 100);
		if (r == 0) {
			waited++;
			continue;
		}
		ssize_t got = read(fds[0], line + len, 1);
		if (got <= 0)
			break;
		len++;
		if (line[len - 1] == '\n')
			break;
	}
	line[len] = '\0';
	close(fds[0]);
	if (strncmp(line, "READY ", 6)) {
		fprintf(stderr, "emulator did not start (got \"%s\")\n", line);
		return -1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	snprintf(e->url, sizeof e->url, "%s", line + 6);
	snprintf(e->ca, sizeof e->ca, "%s/ca.pem", e->dir);
	snprintf(e->entra, sizeof e->entra, "%s/entra", e->url);
	snprintf(e->fabric, sizeof e->fabric, "%s/fabric", e->url);
	snprintf(e->powerbi, sizeof e->powerbi, "%s/powerbi", e->url);
	snprintf(e->graph, sizeof e->graph, "%s/graph", e->url);
	config_defaults(&e->cfg);
	e->cfg.entra_url = e->entra;
	e->cfg.fabric_url = e->fabric;
	e->cfg.powerbi_url = e->powerbi;
	e->cfg.graph_url = e->graph;
	e->cfg.ca_bundle = e->ca;
	char err[PB_ERR_MAX];
	pb_http_opts ho = { .ca_bundle = e->ca };
	if (pb_http_new(&ho, &e->http, err)) {
		fprintf(stderr, "emu: %s\n", err);
		return -1;
	}
	return 0;
}

EMU_FN void emu_stop(struct emu *e)
{
	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		int st;
		waitpid(e->pid, &st, 0);
		e->pid = -1;
	}
	pb_http_free(e->http);
	e->http = NULL;
	if (e->dir[0]) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
		if (system(cmd)) {
			/* leftovers in /tmp are harmless */
		}
		e->dir[0] = '\0';
	}
}

/* Control call: method on <url>/_emulator/<what> with an optional JSON body. Returns the
 * HTTP status (or -1); *reply (may be NULL) gets the body (new). */
EMU_FN long emu_ctl(struct emu *e, const char *method, const char *what, const char *body, char **reply)
{
	char url[700], err[PB_ERR_MAX];
	snprintf(url, sizeof url, "%s/_emulator/%s", e->url, what);
	const char *hdrs[] = { "Content-Type: application/json" };
	pb_http_req req = { .method = method, .url = url, .headers = hdrs, .nheaders = 1, .body = body,
			     .body_len = body ? strlen(body) : 0 };
	pb_http_resp resp;
	if (reply)
		*reply = NULL;
	if (pb_http_do(e->http, &req, &resp, err)) {
		fprintf(stderr, "emu_ctl %s %s: %s\n", method, what, err);
		pb_http_resp_release(&resp);
		return -1;
	}
	long st = resp.status;
	if (reply) {
		*reply = resp.body;
		resp.body = NULL;
	}
	pb_http_resp_release(&resp);
	return st;
}

/* Loads a fixture file (path relative to the source tree) into the emulator. */
EMU_FN long emu_load(struct emu *e, const char *rel)
{
	char path[700], err[PB_ERR_MAX];
	snprintf(path, sizeof path, "%s/%s", e->src, rel);
	char *text = NULL;
	if (read_file(path, 16u << 20, &text, NULL, err)) {
		fprintf(stderr, "emu_load: %s\n", err);
		return -1;
	}
	long st = emu_ctl(e, "POST", "load", text, NULL);
	free(text);
	return st;
}

#endif
