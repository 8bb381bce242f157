/*
 * history_write -- the cost of the DMARC history write path at end of
 * message: what write_history() in lib/mw_dmarc.c does per message
 * (open O_APPEND|O_CREAT, one write() of the record, close), timed over
 * N messages with a real record line.
 *
 *	bench/history_write RECORD-FILE OUT-FILE [N]
 *
 * RECORD-FILE holds one history line (bench/report_bench.sh takes one
 * the daemon wrote); prints "N messages, X us/message".
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	char line[65536];
	struct timespec t0, t1;
	FILE *fp;
	long i, n = argc > 3 ? atol(argv[3]) : 100000;
	size_t len;
	double us;
	int fd;

	if (argc < 3 || (fp = fopen(argv[1], "r")) == NULL ||
	    fgets(line, sizeof(line), fp) == NULL) {
		fprintf(stderr, "usage: history_write RECORD-FILE OUT-FILE [N]\n");
		return 1;
	}
	fclose(fp);
	len = strlen(line);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0640);
		if (fd == -1 || write(fd, line, len) != (ssize_t)len) {
			perror(argv[2]);
			return 1;
		}
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
	    1e3 / (double)n;
	printf("%ld messages, %.2f us/message (%zu-byte record)\n", n, us, len);
	return 0;
}
