/*
 * mw_module -- the interface every check implements.
 *
 * A check is one file (mw_size.c, mw_iprev.c, ...) that defines a
 * `const struct mw_module mw_module_NAME` and is listed once in
 * mw_modules.c.  It owns the ini section [NAME]: cfg_init sets defaults,
 * cfg_set takes one key, cfg_check validates the whole section.  It may
 * hold a process-wide handle (global_new: the SPF server, DKIM library)
 * and gets state_size bytes of zeroed per-connection state.
 *
 * Hooks are all optional.  They look at the session (mw_session_priv.h)
 * and decide through mw_session_act() (a configured action for a check
 * result: held until the SMTP phase where a reject is allowed) or
 * mw_session_refuse() (an immediate answer to this event, e.g. the size
 * cap).  At end of message `authres` appends the check's resinfo to the
 * Authentication-Results header.  on_reset ends a transaction (message
 * done or aborted): free per-message state there.
 */
#ifndef MW_MODULE_H
#define MW_MODULE_H

#include <stddef.h>

struct mw_session;
struct mw_authres;
struct mw_config;

struct mw_module {
	const char	*name;		/* ini section, log name */
	int		 inbound;	/* skipped for trusted/authenticated */

	size_t		 cfg_size;
	void		(*cfg_init)(void *cfg);
	/* 0 ok, -1 bad value (err set), 1 unknown key */
	int		(*cfg_set)(void *cfg, const char *key, const char *value,
			    char *err, size_t errlen);
	int		(*cfg_check)(void *cfg, const struct mw_config *c,
			    char *err, size_t errlen);
	void		(*cfg_dump)(const void *cfg, void *fp);
	void		(*cfg_free)(void *cfg);

	int		(*global_new)(const struct mw_config *c, const void *cfg,
			    void **global, char *err, size_t errlen);
	void		(*global_free)(void *global);

	size_t		 state_size;
	void		(*on_connect)(struct mw_session *s, void *st);
	void		(*on_helo)(struct mw_session *s, void *st);
	void		(*on_mail)(struct mw_session *s, void *st);
	void		(*on_rcpt)(struct mw_session *s, void *st,
			    const char *rcpt);
	void		(*on_header)(struct mw_session *s, void *st,
			    const char *name, const char *value);
	void		(*on_eoh)(struct mw_session *s, void *st);
	void		(*on_body)(struct mw_session *s, void *st,
			    const unsigned char *buf, size_t len);
	void		(*on_eom)(struct mw_session *s, void *st);
	void		(*authres)(struct mw_session *s, void *st,
			    struct mw_authres *ar);
	void		(*on_reset)(struct mw_session *s, void *st);
	void		(*on_close)(struct mw_session *s, void *st);
};

extern const struct mw_module *const mw_modules[];
extern const size_t mw_nmodules;

/* Index of a module by name, or -1. */
int	mw_module_index(const char *name);

#endif /* MW_MODULE_H */
