/* The admin API, on the S3 port: OSCAR's manager paths (services, jobs, logs, info) and
 * /health. Part of the floodgate executable: it wires notify's registry and queue's jobs to
 * HTTP, with the credentials s3api checks (Basic access:secret, or SigV4).
 *
 *   GET    /health                          store and Redis status (no credentials)
 *   GET    /system/info                     version, services, workers, pools
 *   GET    /system/services                 every service (JSON array)
 *   POST   /system/services                 create (JSON or YAML body) -> 201
 *   PUT    /system/services[/{name}]        replace -> 204
 *   GET    /system/services/{name}          one service -> 200, 404
 *   DELETE /system/services/{name}          -> 204, 404
 *   POST   /job/{service}                   async invocation -> 201 {"job_id"}
 *   POST   /run/{service}                   sync invocation -> 200 the script's stdout
 *   GET    /system/logs/{service}           jobs with their status
 *   DELETE /system/logs/{service}           remove the jobs that ended -> 204
 *   GET    /system/logs/{service}/{job}     the job's log (text); ?record: the job record
 *   DELETE /system/logs/{service}/{job}     -> 204
 *   GET    /system/notifications            targets: ARN, endpoint, counters, backlog
 *   GET    /system/notifications/{t}/dlq    a target's dead-lettered messages
 *   POST   /system/notifications/{t}/dlq/replay   delivers them again
 *   GET    /metrics                         Prometheus text (no credentials)
 *
 * These first path segments are not buckets: "health", "metrics", "system", "job", "run" (s3api
 * refuses to create buckets with those names). */
#ifndef FG_GATEWAY_MAIN_API_H
#define FG_GATEWAY_MAIN_API_H

#include <stdbool.h>

struct event_base;
struct h1_handler;
struct h1_req;
struct notify_registry;
struct queue;
struct s3_api;

struct fg_admin_deps {
    struct s3_api *api;
    struct notify_registry *reg;
    struct queue *queue; /* NULL: no Redis configured */
    const char *region;
    const char *domain; /* virtual-hosted style base domain, or NULL */
};

struct fg_admin;
struct fg_admin *fg_admin_new(const struct fg_admin_deps *deps);
void fg_admin_free(struct fg_admin *adm);

/* True when the request belongs to the admin API (by its path; virtual-hosted requests never
 * do). */
bool fg_admin_owns(const struct fg_admin *adm, struct h1_req *req);
/* The handler serving admin requests (its `arg` is the admin). */
void fg_admin_handler(struct fg_admin *adm, struct h1_handler *out);

#endif
