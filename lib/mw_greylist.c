/*
 * mw_greylist -- placeholder for the greylist check; section [greylist].  Being written.
 */
#include "config.h"

#include <string.h>

#include "mw_session_priv.h"

static int
greylist_cfg_set(void *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	(void)cfg;
	(void)key;
	(void)value;
	(void)err;
	(void)errlen;
	return 1;
}

const struct mw_module mw_module_greylist = {
	.name = "greylist",
	.inbound = 1,
	.cfg_size = 1,
	.cfg_set = greylist_cfg_set,
};
