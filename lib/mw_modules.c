/*
 * mw_modules -- the table of check modules, in the order their hooks run.
 * Adding a check: write mw_NAME.c defining mw_module_NAME, list it here,
 * document its [NAME] section in etc/mailwarden.ini.
 */
#include "config.h"

#include <string.h>

#include "mw_module.h"

extern const struct mw_module mw_module_size;
extern const struct mw_module mw_module_iprev;
extern const struct mw_module mw_module_helo;
extern const struct mw_module mw_module_dnsbl;
extern const struct mw_module mw_module_sender;
extern const struct mw_module mw_module_spf;
extern const struct mw_module mw_module_dkim;
extern const struct mw_module mw_module_arc;
extern const struct mw_module mw_module_dmarc;
extern const struct mw_module mw_module_message;
extern const struct mw_module mw_module_greylist;
extern const struct mw_module mw_module_tls;

/*
 * Order matters: hooks of one event run in this order, so a check that
 * reads another's results (mw_session_priv.h: struct mw_shared_results)
 * comes after it: DMARC after SPF, DKIM and ARC, greylisting after the
 * connection checks and SPF.
 */
const struct mw_module *const mw_modules[] = {
	&mw_module_size,
	&mw_module_iprev,
	&mw_module_helo,
	&mw_module_dnsbl,
	&mw_module_sender,	/* before SPF: its lookups share SPF's wait */
	&mw_module_spf,
	&mw_module_dkim,
	&mw_module_arc,		/* before DMARC: trusted sealers */
	&mw_module_dmarc,
	&mw_module_message,
	&mw_module_greylist,
	&mw_module_tls,
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

