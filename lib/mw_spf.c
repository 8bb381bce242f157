/*
 * mw_spf -- placeholder for the spf check; section [spf].  Being written.
 */
#include "config.h"

#include <string.h>

#include "mw_session_priv.h"

static int
spf_cfg_set(void *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	(void)cfg;
	(void)key;
	(void)value;
	(void)err;
	(void)errlen;
	return 1;
}

const struct mw_module mw_module_spf = {
	.name = "spf",
	.inbound = 1,
	.cfg_size = 1,
	.cfg_set = spf_cfg_set,
};
