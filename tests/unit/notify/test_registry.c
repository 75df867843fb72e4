/* Unit tests for notify/registry.c: create, update, delete, config services read-only, the
 * state file (written atomically, reloaded, corrupt), and the getters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "notify/notify.h"
#include "tests/unit/tap.h"

static char dir[64];
static char state[128];

static struct notify_service *svc_new(const char *name, const char *path, const char *extra)
{
    struct notify_service *svc = calloc(1, sizeof(*svc));
    struct conf_error err;
    char doc[512];

    snprintf(doc, sizeof(doc), "name: %s\ninput: [{path: %s}]\n%s", name, path,
             extra != NULL ? extra : "");
    if (notify_service_parse(doc, strlen(doc), svc, &err) != 0)
        printf("# parse failed: %d: %s\n", err.line, err.msg);
    return svc;
}

static enum notify_put_result put(struct notify_registry *reg, const char *name, const char *path,
                                  const char *extra, bool update)
{
    struct notify_service *svc = svc_new(name, path, extra);
    enum notify_put_result res = notify_registry_put(reg, svc, update);

    free(svc); /* its fields were taken */
    return res;
}

static void count_names(const struct notify_service *svc, void *arg)
{
    (void)svc;
    (*(int *)arg)++;
}

static void test_registry_create_update_delete(void)
{
    char msg[160] = "";
    struct notify_registry *reg = notify_registry_new(NULL, msg, sizeof(msg));
    char pool[32], rev1[17], rev2[17];
    unsigned attempts = 0;
    char *json;
    int n = 0;

    ok(reg != NULL, "in-memory registry");
    is_int(put(reg, "one", "abc/in", NULL, false), NOTIFY_CREATED, "create");
    is_int(put(reg, "one", "abc/in", NULL, false), NOTIFY_EXISTS, "create again");
    is_int(put(reg, "two", "abc/in", NULL, true), NOTIFY_NOT_FOUND, "update of unknown");
    is_int(notify_registry_count(reg), 1, "one service");
    ok(notify_registry_lookup(reg, "one", pool, sizeof(pool), &attempts, rev1), "lookup");
    is_str(pool, "default", "lookup pool");
    is_int(attempts, 3, "lookup max_attempts");
    is_int(put(reg, "one", "abc/in", "pool: edge\nmax_attempts: 7\n", true), NOTIFY_UPDATED,
           "update");
    ok(notify_registry_lookup(reg, "one", pool, sizeof(pool), &attempts, rev2), "lookup again");
    is_str(pool, "edge", "updated pool");
    is_int(attempts, 7, "updated max_attempts");
    ok(strcmp(rev1, rev2) != 0, "rev changed");
    ok(!notify_registry_lookup(reg, "nope", pool, sizeof(pool), &attempts, rev2),
       "lookup of unknown");

    json = notify_registry_get_json(reg, "one", false);
    ok(json != NULL && strstr(json, "\"edge\"") != NULL, "get_json");
    free(json);
    ok(notify_registry_get_json(reg, "nope", false) == NULL, "get_json of unknown");
    is_int(put(reg, "two", "abc", NULL, false), NOTIFY_CREATED, "second");
    json = notify_registry_list_json(reg, false);
    {
        json_t *a = json_loads(json, 0, NULL);
        ok(json_is_array(a) && json_array_size(a) == 2, "list_json is an array of two");
        json_decref(a);
    }
    free(json);
    notify_registry_each(reg, count_names, &n);
    is_int(n, 2, "each visits every service");

    is_int(notify_registry_delete(reg, "one"), NOTIFY_UPDATED, "delete");
    is_int(notify_registry_delete(reg, "one"), NOTIFY_NOT_FOUND, "delete again");
    is_int(notify_registry_count(reg), 1, "one left");
    json = notify_registry_list_json(reg, false);
    ok(json[0] == '[' && strstr(json, "\"two\"") != NULL, "list after delete");
    free(json);
    notify_registry_free(reg);
    notify_registry_free(NULL);
}

static void test_registry_config_services_read_only(void)
{
    char msg[160] = "";
    struct notify_registry *reg = notify_registry_new(NULL, msg, sizeof(msg));
    struct notify_service *svcs = calloc(2, sizeof(*svcs));
    struct notify_service *one = svc_new("cfg", "abc", NULL);
    struct notify_service *two = svc_new("cfg2", "abc", NULL);

    svcs[0] = *one;
    svcs[1] = *two;
    free(one);
    free(two);
    is_int(notify_registry_add_config(reg, svcs, 2, msg, sizeof(msg)), 0, "config added");
    is_int(put(reg, "cfg", "abc", NULL, true), NOTIFY_READ_ONLY, "update of config service");
    is_int(put(reg, "cfg", "abc", NULL, false), NOTIFY_READ_ONLY, "create over config service");
    is_int(notify_registry_delete(reg, "cfg2"), NOTIFY_READ_ONLY, "delete of config service");

    svcs = calloc(1, sizeof(*svcs));
    one = svc_new("cfg", "abc", NULL);
    svcs[0] = *one;
    free(one);
    is_int(notify_registry_add_config(reg, svcs, 1, msg, sizeof(msg)), -1, "duplicate config");
    ok(strstr(msg, "'cfg'") != NULL, "message names the service");
    is_int(notify_registry_count(reg), 2, "still two");
    notify_registry_free(reg);
}

static void test_registry_persists_and_reloads(void)
{
    char msg[160] = "";
    struct notify_registry *reg = notify_registry_new(state, msg, sizeof(msg));
    struct notify_service *cfg = calloc(1, sizeof(*cfg));
    struct notify_service *tmp = svc_new("from-config", "abc", NULL);
    char rev_before[17], rev_after[17], pool[32];
    unsigned attempts;
    struct stat st;

    ok(reg != NULL, "a missing state file is an empty registry");
    is_int(notify_registry_count(reg), 0, "empty");
    *cfg = *tmp;
    free(tmp);
    notify_registry_add_config(reg, cfg, 1, msg, sizeof(msg));
    is_int(put(reg, "api-a", "abc/x", "environment: {secrets: {K: v}}\n", false), NOTIFY_CREATED,
           "create a");
    is_int(put(reg, "api-b", "abc/y", NULL, false), NOTIFY_CREATED, "create b");
    is_int(put(reg, "api-a", "abc/x", "environment: {secrets: {K: v2}}\n", true), NOTIFY_UPDATED,
           "update a");
    is_int(notify_registry_delete(reg, "api-b"), NOTIFY_UPDATED, "delete b");
    notify_registry_lookup(reg, "api-a", pool, sizeof(pool), &attempts, rev_before);
    ok(stat(state, &st) == 0 && (st.st_mode & 077) == 0, "state file private (0600)");
    notify_registry_free(reg);

    reg = notify_registry_new(state, msg, sizeof(msg));
    ok(reg != NULL, "reloads");
    is_int(notify_registry_count(reg), 1, "only the API service is kept");
    ok(notify_registry_lookup(reg, "api-a", pool, sizeof(pool), &attempts, rev_after), "a back");
    is_str(rev_after, rev_before, "same rev (secrets kept)");
    ok(!notify_registry_lookup(reg, "from-config", pool, sizeof(pool), &attempts, rev_after),
       "config service not stored");
    notify_registry_free(reg);

    {
        FILE *f = fopen(state, "w");
        fputs("[{\"name\": \"x\",", f);
        fclose(f);
    }
    msg[0] = '\0';
    reg = notify_registry_new(state, msg, sizeof(msg));
    ok(reg == NULL, "a corrupt state file is an error");
    ok(strstr(msg, state) != NULL, "message names the file");
    printf("# %s\n", msg);

    {
        FILE *f = fopen(state, "w");
        fputs("[{\"name\": \"BAD\", \"input\": [{\"path\": \"abc\"}]}]", f);
        fclose(f);
    }
    reg = notify_registry_new(state, msg, sizeof(msg));
    ok(reg == NULL, "an invalid service in the state file is an error");
    printf("# %s\n", msg);
    unlink(state);
}

static void test_registry_write_failure_changes_nothing(void)
{
    char msg[160] = "";
    char bad[160];
    struct notify_registry *reg;

    snprintf(bad, sizeof(bad), "%s/no/such/dir/state.json", dir);
    reg = notify_registry_new(bad, msg, sizeof(msg));
    ok(reg != NULL, "missing file under a missing folder");
    is_int(put(reg, "a", "abc", NULL, false), NOTIFY_IO_ERROR, "unwritable state");
    is_int(notify_registry_count(reg), 0, "nothing changed");
    notify_registry_free(reg);
}

int main(void)
{
    char tmpl[] = "/tmp/fg-registry-XXXXXX";

    if (mkdtemp(tmpl) == NULL)
        return 1;
    snprintf(dir, sizeof(dir), "%s", tmpl);
    snprintf(state, sizeof(state), "%s/services.json", dir);
    subtest(test_registry_create_update_delete);
    subtest(test_registry_config_services_read_only);
    subtest(test_registry_persists_and_reloads);
    subtest(test_registry_write_failure_changes_nothing);
    rmdir(dir);
    return done_testing();
}
