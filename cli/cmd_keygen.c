#include <openssl/rand.h>
#include <stdio.h>

#include "cli/cli.h"

int cmd_keygen(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: pbiport keygen\n");
		return 2;
	}
	unsigned char key[32];
	if (RAND_bytes(key, sizeof key) != 1) {
		fprintf(stderr, "pbiport keygen: no randomness available\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof key; i++)
		printf("%02x", key[i]);
	printf("\n");
	return 0;
}
