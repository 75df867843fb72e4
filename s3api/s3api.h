/* s3api: the S3 REST front end (request classification, auth, operations, XML, errors) over
 * the object store. The only header other modules include from s3api/. */
#ifndef FG_S3API_S3API_H
#define FG_S3API_S3API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct gw_pool;
struct h1_handler;
struct s3_api;

struct s3_user_config {
    char *name;
    char *access_key;
    char *secret_key;
};

/* s3api's settings; its key table is s3_config_keys (conf/ schema) in s3api/config.c. */
struct s3_config {
    char *data_dir; /* store root; required */
    char *region;   /* default "us-east-1" */
    char *domain;   /* virtual-hosted style base domain, e.g. "s3.local"; NULL off */
    struct s3_user_config *users;
    size_t n_users;
    bool sigv2;                /* accept SigV2; default true (s3cmd, boto3 presign v2) */
    unsigned max_skew_s;       /* default 900 */
    uint64_t max_object_bytes; /* single PUT ceiling; default 5 GiB */
    uint64_t inline_max_bytes; /* objects this small live in the index; default 64 KiB */
    unsigned upload_max_age_s; /* abandoned multipart uploads removed after; default 7 days */
    unsigned disk_threads;     /* default 4 */
};

void s3_config_init(struct s3_config *c); /* defaults */
void s3_config_cleanup(struct s3_config *c);

/* Opens the store and builds the API; NULL with `err` filled on failure. */
struct s3_api *s3_api_new(struct event_base *base, const struct s3_config *cfg, char *err,
                          size_t err_cap);
/* The HTTP handler serving S3 (its `arg` is the api). */
void s3_api_handler(struct s3_api *api, struct h1_handler *out);
void s3_api_free(struct s3_api *api);

#endif
