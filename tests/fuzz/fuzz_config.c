/* Fuzz target: arbitrary bytes as a configuration file, through conf/'s YAML reader and the
 * module tables the daemon composes (listen etc., limits:, the s3 keys), then conf_free. Also
 * runs the value parsers and conf_set on the raw bytes. Must not crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gateway/h1.h"
#include "gateway/h1_config.h"
#include "s3api/config.h"
#include "s3api/s3api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The daemon's table lives in the executable (gateway/main_settings.c); this one composes the
 * same module tables the same way. */
struct fuzz_settings {
    char *listen;
    char *log_level;
    unsigned drain_timeout_ms;
    char **tags;
    size_t n_tags;
    struct h1_limits limits;
    struct s3_config s3;
};

static const struct conf_key fuzz_keys[] = {
    {.name = "listen",
     .type = CONF_STRING,
     CONF_FIELD(struct fuzz_settings, listen),
     .dflt = "127.0.0.1:9000",
     .flags = CONF_NONEMPTY},
    {.name = "log_level",
     .type = CONF_STRING,
     CONF_FIELD(struct fuzz_settings, log_level),
     .dflt = "info"},
    {.name = "drain_timeout",
     .type = CONF_DURATION_MS,
     CONF_FIELD(struct fuzz_settings, drain_timeout_ms),
     .dflt = "30s",
     .min = 0,
     .max = 3600000},
    {.name = "tags",
     .type = CONF_STRING_LIST,
     .offset = offsetof(struct fuzz_settings, tags),
     CONF_COUNT(struct fuzz_settings, n_tags)},
    {.name = "limits",
     .type = CONF_SECTION,
     .offset = offsetof(struct fuzz_settings, limits),
     .sub = h1_limits_keys},
    {.type = CONF_INCLUDE, .offset = offsetof(struct fuzz_settings, s3), .sub = s3_config_keys},
    CONF_KEY_END,
};

static void fuzz_values(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct fuzz_settings fs;
    struct conf_error err;
    const char *value;
    char *eq;
    bool b;
    int64_t i;
    uint64_t u;

    if (s == NULL)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    (void)conf_parse_bool(s, &b);
    (void)conf_parse_int(s, &i);
    (void)conf_parse_uint(s, &u);
    (void)conf_parse_size(s, &u);
    (void)conf_parse_duration_ms(s, &u);

    /* "path=value" as a command-line override would give it */
    memset(&fs, 0, sizeof(fs));
    conf_defaults(fuzz_keys, &fs);
    eq = strchr(s, '=');
    value = "";
    if (eq != NULL) {
        *eq = '\0';
        value = eq + 1;
    }
    (void)conf_set(fuzz_keys, &fs, s, value, &err);
    conf_free(fuzz_keys, &fs);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_settings fs;
    struct conf_error err;
    char msg[200];

    memset(&fs, 0, sizeof(fs));
    if (conf_load_string(fuzz_keys, &fs, (const char *)data, size, &err) == 0)
        (void)s3_config_validate(&fs.s3, msg, sizeof(msg));
    else if (err.line < 0 || memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
        abort(); /* an error must carry a sane line and a terminated message */
    conf_free(fuzz_keys, &fs);
    if (size < 4096)
        fuzz_values(data, size);
    return 0;
}
