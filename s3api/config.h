/* s3api's configuration keys (conf/ schema) for struct s3_config. Included by the daemon's
 * settings only; everything else sees struct s3_config through s3api/s3api.h. */
#ifndef FG_S3API_CONFIG_H
#define FG_S3API_CONFIG_H

#include "conf/conf.h"

/* Keys, at the level the table is included (the daemon includes it at the top):
 *   data_dir, region, domain              strings
 *   users: [{name, access_key, secret_key}] each required and non-empty; access keys unique
 *   store: {max_object_size, inline_max_size, upload_max_age, disk_threads}
 *   auth:  {sigv2, max_skew}
 * Defaults are those of s3_config_init(), which is built from this table. */
extern const struct conf_key s3_config_keys[];

struct s3_config;

/* Checks a complete configuration, including users added after the table was applied (e.g.
 * from the environment): data_dir set, every user with a valid non-empty access key and a
 * non-empty secret, access keys unique. Does not require users. 0, or -1 with msg. */
int s3_config_validate(const struct s3_config *c, char *msg, size_t msg_cap);

#endif
