/*
 * fuzz_ini -- libFuzzer harness for the configuration loader: the input
 * is an ini file, loaded (every section, key and value parser of the
 * core and of each check), dumped as `mailwarden -t` would, and freed.
 * A bad file must be refused with an error, never crash or leak.
 * Inputs with '@' are skipped: a socket host is resolved at load, and
 * the fuzzer must not send names to the system resolver.
 * Built and run by test/fuzz/build.sh.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mw_config.h"
#include "mw_log.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mw_log_open("fuzz_ini", 0, LOG_CRIT, 1);
	snprintf(path, sizeof(path), "/tmp/fuzz_ini.%ld.ini", (long)getpid());
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mw_config *cfg;
	char err[1024];
	FILE *fp;

	if (size > 65536 || memchr(data, '@', size) != NULL)
		return 0;
	if ((fp = fopen(path, "w")) == NULL)
		return 0;
	fwrite(data, 1, size, fp);
	fclose(fp);
	err[0] = '\0';
	if (mw_config_load(path, &cfg, err, sizeof(err)) == 0) {
		if ((fp = fopen("/dev/null", "w")) != NULL) {
			mw_config_dump(cfg, fp);
			fclose(fp);
		}
		mw_config_free(cfg);
	} else if (err[0] == '\0')
		abort();	/* refused without saying why */
	unlink(path);
	return 0;
}
