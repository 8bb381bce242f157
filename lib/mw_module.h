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
 * Every module has the framework key `enabled = yes|no` (parsed by
 * mw_config.c; off_by_default says which).  Hooks are all optional and
 * receive the module's own configuration.  They look at the session
 * (mw_session_priv.h); mw_session_global(s) is the module's handle from
 * global_new.  They decide through mw_session_act() (a configured
 * action for a check result: held until the SMTP phase where a reject
 * is allowed) or
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
	int		 off_by_default;	/* `enabled = no` unless set */

	size_t		 cfg_size;
	void		(*cfg_init)(void *cfg);
	/* 0 ok, -1 bad value (err set), 1 unknown key */
	int		(*cfg_set)(void *cfg, const char *key, const char *value,
			    char *err, size_t errlen);
	/* Only for an enabled module: a disabled one's settings are not checked. */
	int		(*cfg_check)(void *cfg, const struct mw_config *c,
			    char *err, size_t errlen);
	void		(*cfg_dump)(const void *cfg, void *fp);
	void		(*cfg_free)(void *cfg);

	/* Only for an enabled module. */
	int		(*global_new)(const struct mw_config *c, const void *cfg,
			    void **global, char *err, size_t errlen);
	void		(*global_free)(void *global);

	/*
	 * Event hooks get the module's own [NAME] configuration (cfg) and
	 * per-connection state (st).  Not run for a disabled module, nor
	 * for an inbound one when the client is trusted or authenticated.
	 */
	size_t		 state_size;
	void		(*on_connect)(struct mw_session *s, const void *cfg,
			    void *st);
	void		(*on_helo)(struct mw_session *s, const void *cfg,
			    void *st);
	void		(*on_mail)(struct mw_session *s, const void *cfg,
			    void *st);
	void		(*on_rcpt)(struct mw_session *s, const void *cfg,
			    void *st, const char *rcpt);
	void		(*on_header)(struct mw_session *s, const void *cfg,
			    void *st, const char *name, const char *value);
	void		(*on_eoh)(struct mw_session *s, const void *cfg,
			    void *st);
	void		(*on_body)(struct mw_session *s, const void *cfg,
			    void *st, const unsigned char *buf, size_t len);
	void		(*on_eom)(struct mw_session *s, const void *cfg,
			    void *st);
	void		(*authres)(struct mw_session *s, const void *cfg,
			    void *st, struct mw_authres *ar);
	/*
	 * on_reset (end of a transaction) and on_close (end of the
	 * connection) run for every enabled module, trusted client or not:
	 * free per-message state there, and reset the results this module
	 * publishes for others (mw_session_priv.h, struct mw_shared_results).
	 */
	void		(*on_reset)(struct mw_session *s, const void *cfg,
			    void *st);
	void		(*on_close)(struct mw_session *s, const void *cfg,
			    void *st);
	/*
	 * `mailwarden -t`: check what only a live system can (DNS for the
	 * signing keys), print a "warning: ..." line per problem to fp (a
	 * FILE *) and return how many.  Run with a fresh session.
	 */
	int		(*self_check)(struct mw_session *s, const void *cfg,
			    void *fp);
};

extern const struct mw_module *const mw_modules[];
extern const size_t mw_nmodules;

/* Index of a module by name, or -1.  For the config loader, not hooks. */
int	mw_module_index(const char *name);

#endif /* MW_MODULE_H */
