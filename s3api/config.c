/* s3api's settings: the key table for struct s3_config and its defaults. Parsing is conf/'s;
 * what the daemon adds on top (environment credentials, data_dir fallback) is in
 * gateway/main_settings.c. */
#include "s3api/config.h"

#include <stdio.h>
#include <string.h>

#include "s3api/s3api.h"

#define KIB   1024LL
#define MIB   (1024 * KIB)
#define GIB   (1024 * MIB)
#define TIB   (1024 * GIB)
#define DAY_S (24 * 3600LL)

/* Access keys appear in SigV4 credential scopes ("AK/date/region/s3/aws4_request") and SigV2
 * headers ("AWS AK:sig"), so they must not contain '/', ':' or spaces. */
static int access_key_problem(const char *ak, char *msg, size_t msg_cap)
{
    if (ak == NULL || ak[0] == '\0') {
        snprintf(msg, msg_cap, "must not be empty");
        return -1;
    }
    if (strlen(ak) > 128) {
        snprintf(msg, msg_cap, "longer than 128 characters");
        return -1;
    }
    for (const char *p = ak; *p != '\0'; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '/' || *p == ':') {
            snprintf(msg, msg_cap, "must not contain spaces, control characters, '/' or ':'");
            return -1;
        }
    }
    return 0;
}

static int check_access_key(const void *base, const struct conf_key *key, char *msg, size_t msg_cap)
{
    const struct s3_user_config *u = base;

    (void)key;
    return access_key_problem(u->access_key, msg, msg_cap);
}

/* Users i and j (j < i) sharing an access key, or -1 for none. */
static int find_shared_key(const struct s3_config *c, size_t *i_out, size_t *j_out)
{
    for (size_t i = 0; i < c->n_users; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->users[i].access_key, c->users[j].access_key) == 0) {
                *i_out = i;
                *j_out = j;
                return 0;
            }
        }
    }
    return -1;
}

static int check_unique_keys(const void *base, const struct conf_key *key, char *msg,
                             size_t msg_cap)
{
    const struct s3_config *c = base;
    size_t i, j;

    (void)key;
    if (find_shared_key(c, &i, &j) != 0)
        return 0;
    snprintf(msg, msg_cap, "users '%.40s' and '%.40s' have the same access key", c->users[j].name,
             c->users[i].name);
    return -1;
}

static const struct conf_key user_keys[] = {
    {.name = "name",
     .type = CONF_STRING,
     CONF_FIELD(struct s3_user_config, name),
     .flags = CONF_REQUIRED | CONF_NONEMPTY,
     .help = "shown in the access log"},
    {.name = "access_key",
     .type = CONF_STRING,
     CONF_FIELD(struct s3_user_config, access_key),
     .flags = CONF_REQUIRED | CONF_NONEMPTY,
     .check = check_access_key},
    {.name = "secret_key",
     .type = CONF_STRING,
     CONF_FIELD(struct s3_user_config, secret_key),
     .flags = CONF_REQUIRED | CONF_NONEMPTY},
    CONF_KEY_END,
};

static const struct conf_key store_keys[] = {
    {.name = "max_object_size",
     .type = CONF_SIZE,
     CONF_FIELD(struct s3_config, max_object_bytes),
     .dflt = "5GiB",
     .min = 1,
     .max = 5 * TIB,
     .help = "largest single PUT"},
    {.name = "inline_max_size",
     .type = CONF_SIZE,
     CONF_FIELD(struct s3_config, inline_max_bytes),
     .dflt = "64KiB",
     .min = 0,
     .max = 16 * MIB,
     .help = "objects up to this size live in the index"},
    {.name = "upload_max_age",
     .type = CONF_DURATION_S,
     CONF_FIELD(struct s3_config, upload_max_age_s),
     .dflt = "7d",
     .min = 60,
     .max = 365 * DAY_S,
     .help = "abandoned multipart uploads are removed after this"},
    {.name = "disk_threads",
     .type = CONF_UINT,
     CONF_FIELD(struct s3_config, disk_threads),
     .dflt = "4",
     .min = 1,
     .max = 256},
    CONF_KEY_END,
};

static const struct conf_key auth_keys[] = {
    {.name = "sigv2",
     .type = CONF_BOOL,
     CONF_FIELD(struct s3_config, sigv2),
     .dflt = "true",
     .help = "accept AWS Signature Version 2"},
    {.name = "max_skew",
     .type = CONF_DURATION_S,
     CONF_FIELD(struct s3_config, max_skew_s),
     .dflt = "15m",
     .min = 1,
     .max = 7 * DAY_S,
     .help = "largest accepted difference between request and server clocks"},
    CONF_KEY_END,
};

/* store: and auth: group keys of the same struct, so their sections sit at offset 0. */
const struct conf_key s3_config_keys[] = {
    {.name = "data_dir",
     .type = CONF_STRING,
     CONF_FIELD(struct s3_config, data_dir),
     .flags = CONF_NONEMPTY,
     .help = "store root"},
    {.name = "region",
     .type = CONF_STRING,
     CONF_FIELD(struct s3_config, region),
     .dflt = "us-east-1",
     .flags = CONF_NONEMPTY},
    {.name = "domain",
     .type = CONF_STRING,
     CONF_FIELD(struct s3_config, domain),
     .help = "base domain for virtual-hosted style requests"},
    {.name = "users",
     .type = CONF_LIST,
     .offset = offsetof(struct s3_config, users),
     .sub = user_keys,
     .elem_size = sizeof(struct s3_user_config),
     CONF_COUNT(struct s3_config, n_users),
     .check = check_unique_keys},
    {.name = "store", .type = CONF_SECTION, .offset = 0, .sub = store_keys},
    {.name = "auth", .type = CONF_SECTION, .offset = 0, .sub = auth_keys},
    CONF_KEY_END,
};

int s3_config_validate(const struct s3_config *c, char *msg, size_t msg_cap)
{
    char why[96];
    size_t i, j;

    if (c->data_dir == NULL || c->data_dir[0] == '\0') {
        snprintf(msg, msg_cap, "data_dir is not set");
        return -1;
    }
    for (i = 0; i < c->n_users; i++) {
        const struct s3_user_config *u = &c->users[i];
        const char *name = u->name != NULL ? u->name : "";

        if (access_key_problem(u->access_key, why, sizeof(why)) != 0) {
            snprintf(msg, msg_cap, "access key of user '%.40s' %s", name, why);
            return -1;
        }
        if (u->secret_key == NULL || u->secret_key[0] == '\0') {
            snprintf(msg, msg_cap, "secret key of user '%.40s' is empty", name);
            return -1;
        }
    }
    if (find_shared_key(c, &i, &j) == 0) {
        snprintf(msg, msg_cap, "users '%.40s' and '%.40s' have the same access key",
                 c->users[j].name != NULL ? c->users[j].name : "",
                 c->users[i].name != NULL ? c->users[i].name : "");
        return -1;
    }
    return 0;
}

void s3_config_init(struct s3_config *c)
{
    memset(c, 0, sizeof(*c));
    conf_defaults(s3_config_keys, c);
}

void s3_config_cleanup(struct s3_config *c)
{
    conf_free(s3_config_keys, c);
}
