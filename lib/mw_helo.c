/*
 * mw_helo -- placeholder for the helo check; section [helo].  Being written.
 */
#include "config.h"

#include <string.h>

#include "mw_session_priv.h"

static int
helo_cfg_set(void *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	(void)cfg;
	(void)key;
	(void)value;
	(void)err;
	(void)errlen;
	return 1;
}

const struct mw_module mw_module_helo = {
	.name = "helo",
	.inbound = 1,
	.cfg_size = 1,
	.cfg_set = helo_cfg_set,
};
