/*
 * mw_dmarc -- placeholder for the dmarc check; section [dmarc].  Being written.
 */
#include "config.h"

#include <string.h>

#include "mw_session_priv.h"

static int
dmarc_cfg_set(void *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	(void)cfg;
	(void)key;
	(void)value;
	(void)err;
	(void)errlen;
	return 1;
}

const struct mw_module mw_module_dmarc = {
	.name = "dmarc",
	.inbound = 1,
	.cfg_size = 1,
	.cfg_set = dmarc_cfg_set,
};
