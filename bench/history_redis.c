/*
 * history_redis -- the cost of the DMARC history's Redis write path at
 * end of message: the round trip history_to_redis() in lib/mw_dmarc.c
 * makes (RPUSH of the record to the day's list, LTRIM, EXPIREAT, one
 * pipeline through the shared client lib/mw_redis.c), timed over N
 * messages with a real record line.
 *
 *	bench/history_redis RECORD-FILE HOST:PORT [N]
 *
 * Prints "N messages, X us/message".  Uses the key prefix
 * mw:bench:history (deleted at the end).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "mw_redis.h"

int
main(int argc, char **argv)
{
	char line[65536], err[256], key[64], at[32];
	struct mw_redis_cfg cfg;
	struct mw_redis *r;
	struct redisReply *rep[3];
	struct timespec t0, t1;
	const char *av[3], *tv[4], *ev[3], *dv[2];
	size_t al[3];
	struct mw_redis_cmd cmds[3];
	long i, n = argc > 3 ? atol(argv[3]) : 20000;
	FILE *fp;
	double us;

	if (argc < 3 || (fp = fopen(argv[1], "r")) == NULL ||
	    fgets(line, sizeof(line), fp) == NULL) {
		fprintf(stderr, "usage: history_redis RECORD-FILE HOST:PORT [N]\n");
		return 1;
	}
	fclose(fp);
	line[strcspn(line, "\n")] = '\0';
	mw_redis_cfg_init(&cfg);
	if (mw_redis_cfg_set(&cfg, "server", argv[2], 0, err, sizeof(err)) != 0 ||
	    mw_redis_new(&cfg, &r, err, sizeof(err)) == -1) {
		fprintf(stderr, "history_redis: %s\n", err);
		return 1;
	}
	snprintf(key, sizeof(key), "mw:bench:history:%lld",
	    (long long)time(NULL) / 86400 * 86400);
	snprintf(at, sizeof(at), "%lld", (long long)time(NULL) + 86400);
	av[0] = "RPUSH"; av[1] = key; av[2] = line;
	al[0] = 5; al[1] = strlen(key); al[2] = strlen(line);
	tv[0] = "LTRIM"; tv[1] = key; tv[2] = "-2000000"; tv[3] = "-1";
	ev[0] = "EXPIREAT"; ev[1] = key; ev[2] = at;
	cmds[0].argc = 3; cmds[0].argv = av; cmds[0].argvlen = al;
	cmds[1].argc = 4; cmds[1].argv = tv; cmds[1].argvlen = NULL;
	cmds[2].argc = 3; cmds[2].argv = ev; cmds[2].argvlen = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		if (mw_redis_run(r, cmds, 3, rep, err, sizeof(err)) !=
		    MW_REDIS_OK) {
			fprintf(stderr, "history_redis: %s\n", err);
			return 1;
		}
		mw_redis_free_replies(rep, 3);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
	    1e3 / (double)n;
	printf("%ld messages, %.2f us/message (%zu-byte record, one "
	    "RPUSH+LTRIM+EXPIREAT round trip)\n", n, us, strlen(line));
	dv[0] = "DEL"; dv[1] = key;
	cmds[0].argc = 2; cmds[0].argv = dv; cmds[0].argvlen = NULL;
	if (mw_redis_run(r, cmds, 1, rep, err, sizeof(err)) == MW_REDIS_OK)
		mw_redis_free_replies(rep, 1);
	mw_redis_free(r);
	return 0;
}
