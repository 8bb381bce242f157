/*
 * mw_iprev -- placeholder for the iprev check; section [iprev].  Being written.
 */
#include "config.h"

#include <string.h>

#include "mw_session_priv.h"

static int
iprev_cfg_set(void *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	(void)cfg;
	(void)key;
	(void)value;
	(void)err;
	(void)errlen;
	return 1;
}

const struct mw_module mw_module_iprev = {
	.name = "iprev",
	.inbound = 1,
	.cfg_size = 1,
	.cfg_set = iprev_cfg_set,
};
