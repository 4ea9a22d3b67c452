/* The `pbiport` command: one function per sub-command, dispatched from cli/main.c.
 * Each returns the process exit code: 0 success, 1 failure, 2 bad input/usage. */
#ifndef PBIPORT_CLI_H
#define PBIPORT_CLI_H

int cmd_keygen(int argc, char **argv);
int cmd_error_codes(int argc, char **argv);
int cmd_tmdl_parse(int argc, char **argv);
int cmd_tmdl(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_org(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_rotate_keys(int argc, char **argv);

#endif
