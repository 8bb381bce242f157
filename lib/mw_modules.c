/*
 * mw_modules -- the table of check modules, in the order their hooks run.
 * Adding a check: write mw_NAME.c defining mw_module_NAME, list it here,
 * document its [NAME] section in etc/mailwarden.ini.
 */
#include "config.h"

#include <string.h>

#include "mw_module.h"

extern const struct mw_module mw_module_size;

const struct mw_module *const mw_modules[] = {
	&mw_module_size,
};

const size_t mw_nmodules = sizeof(mw_modules) / sizeof(mw_modules[0]);

int
mw_module_index(const char *name)
{
	size_t i;

	for (i = 0; i < mw_nmodules; i++)
		if (strcmp(mw_modules[i]->name, name) == 0)
			return (int)i;
	return -1;
}

