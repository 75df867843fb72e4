/* Unit tests for gateway/main_settings.c: defaults < config file < command line, environment
 * credentials, --check-config, --version, --help, and the module tables' defaults. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/h1.h"
#include "gateway/h1_config.h"
#include "gateway/main_settings.h"
#include "s3api/config.h"
#include "s3api/s3api.h"
#include "tests/unit/tap.h"

#define ARGV(...) ((char *[]){"floodgate", __VA_ARGS__, NULL})

static char out_text[8192];
static char err_text[8192];

static void read_back(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);

    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* Runs fg_settings_load with stdout and stderr captured into out_text and err_text. */
static int load(struct fg_settings *s, char **argv, int *exit_code)
{
    char out_path[] = "/tmp/fg_test_out_XXXXXX";
    char err_path[] = "/tmp/fg_test_err_XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    int saved_out = dup(1), saved_err = dup(2);
    int argc = 0, rc;

    while (argv[argc] != NULL)
        argc++;
    unlink(out_path);
    unlink(err_path);
    fflush(stdout);
    fflush(stderr);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    *exit_code = -1;
    rc = fg_settings_load(s, argc, argv, exit_code);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    read_back(out_fd, out_text, sizeof(out_text));
    read_back(err_fd, err_text, sizeof(err_text));
    return rc;
}

/* Writes `text` to a new temporary file whose name goes to `path` (PATH_MAX-safe size). */
static void write_config(char *path, size_t cap, const char *text)
{
    int fd;

    snprintf(path, cap, "/tmp/fg_test_settings_XXXXXX");
    fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        printf("# cannot write %s\n", path);
    if (fd >= 0)
        close(fd);
}

static void set_env_creds(const char *ak, const char *sk)
{
    if (ak != NULL)
        setenv("FLOODGATE_ACCESS_KEY", ak, 1);
    else
        unsetenv("FLOODGATE_ACCESS_KEY");
    if (sk != NULL)
        setenv("FLOODGATE_SECRET_KEY", sk, 1);
    else
        unsetenv("FLOODGATE_SECRET_KEY");
}

static void test_cli_only_with_env_credentials(void)
{
    struct fg_settings s;
    int code;

    set_env_creds("AKENV", "env-secret");
    is_int(load(&s, ARGV("--listen", "0.0.0.0:9001", "--data-dir", "/tmp/fgdata"), &code), 0,
           "runs");
    is_str(err_text, "", "nothing on stderr");
    is_str(s.listen, "0.0.0.0:9001", "listen from CLI");
    is_str(s.s3.data_dir, "/tmp/fgdata", "data_dir from CLI");
    is_str(s.s3.region, "us-east-1", "default region");
    ok(s.s3.domain == NULL, "no domain");
    is_str(s.log_level, "info", "default log level");
    is_int(s.level, LOG_INFO, "parsed log level");
    is_str(s.error_log, "-", "default error log");
    is_str(s.access_log, "-", "default access log");
    ok(s.redis_url == NULL && s.pid_file == NULL && s.config_path == NULL, "unset strings");
    ok(!s.check_only, "not check-only");
    is_int(s.limits.header_timeout_ms, 30000, "default header timeout");
    is_int(s.drain_timeout_ms, 30000, "default drain timeout");
    is_int(s.s3.n_users, 1, "one user from the environment");
    if (s.s3.n_users == 1) {
        is_str(s.s3.users[0].name, "admin", "env user name");
        is_str(s.s3.users[0].access_key, "AKENV", "env access key");
        is_str(s.s3.users[0].secret_key, "env-secret", "env secret key");
    }
    fg_settings_cleanup(&s);
    fg_settings_cleanup(&s); /* twice is harmless */

    is_int(
        load(&s,
             ARGV("--log-level", "debug", "--region", "eu-west-1", "--domain", "s3.test", "--redis",
                  "redis://r:6379", "--access-log", "off", "--error-log", "/tmp/err.log"),
             &code),
        0, "every key option");
    is_str(s.s3.data_dir, "./data", "data_dir defaults to ./data");
    is_int(s.level, LOG_DEBUG, "--log-level");
    is_str(s.s3.region, "eu-west-1", "--region");
    is_str(s.s3.domain, "s3.test", "--domain");
    is_str(s.redis_url, "redis://r:6379", "--redis");
    is_str(s.access_log, "off", "--access-log");
    is_str(s.error_log, "/tmp/err.log", "--error-log");
    fg_settings_cleanup(&s);
}

static void test_config_file_then_cli_override(void)
{
    char path[64];
    struct fg_settings s;
    int code;

    write_config(path, sizeof(path),
                 "listen: 127.0.0.1:9100\n"
                 "region: ap-south-1\n"
                 "data_dir: /srv/data\n"
                 "log_level: warn\n"
                 "redis: redis://127.0.0.1:6379\n"
                 "users:\n"
                 "  - name: alice\n"
                 "    access_key: AKALICE\n"
                 "    secret_key: alice-secret\n"
                 "limits:\n"
                 "  header_timeout: 5s\n"
                 "  max_connections: 100\n"
                 "store:\n"
                 "  inline_max_size: 4KiB\n"
                 "  upload_max_age: 1d\n"
                 "auth:\n"
                 "  sigv2: false\n"
                 "  max_skew: 5m\n");
    set_env_creds("AKENV", "env-secret");
    is_int(load(&s, ARGV("--config", path, "--region", "eu-central-1", "--listen", "[::1]:9200"),
                &code),
           0, "runs");
    is_str(err_text, "", "nothing on stderr");
    is_str(s.config_path, path, "config path kept");
    is_str(s.listen, "[::1]:9200", "CLI beats file");
    is_str(s.s3.region, "eu-central-1", "CLI region beats file");
    is_str(s.s3.data_dir, "/srv/data", "file data_dir");
    is_int(s.level, LOG_WARN, "file log level");
    is_str(s.redis_url, "redis://127.0.0.1:6379", "file redis");
    is_int(s.limits.header_timeout_ms, 5000, "file limit");
    is_int(s.limits.max_conns, 100, "file max_connections");
    is_int(s.limits.idle_timeout_ms, 60000, "default limit kept");
    ok(s.s3.inline_max_bytes == 4096, "store.inline_max_size");
    is_int(s.s3.upload_max_age_s, 86400, "store.upload_max_age");
    ok(!s.s3.sigv2, "auth.sigv2");
    is_int(s.s3.max_skew_s, 300, "auth.max_skew");
    ok(s.s3.max_object_bytes == 5ULL << 30, "default max object size");
    is_int(s.s3.n_users, 2, "file user and env user");
    if (s.s3.n_users == 2) {
        is_str(s.s3.users[0].name, "alice", "file user first");
        is_str(s.s3.users[1].name, "admin", "env user second");
    }
    fg_settings_cleanup(&s);

    /* the same pair in the file and the environment is one user */
    set_env_creds("AKALICE", "alice-secret");
    is_int(load(&s, ARGV("-c", path), &code), 0, "same credentials twice");
    is_int(s.s3.n_users, 1, "counted once");
    fg_settings_cleanup(&s);

    /* the same access key with another secret is an error */
    set_env_creds("AKALICE", "other");
    is_int(load(&s, ARGV("-c", path), &code), 1, "same access key, other secret");
    is_int(code, 1, "exit 1");
    ok(strstr(err_text, "users 'alice' and 'admin' have the same access key") != NULL,
       "duplicate access key message");
    unlink(path);
}

static void test_check_config(void)
{
    char path[64];
    struct fg_settings s;
    int code;

    write_config(path, sizeof(path),
                 "listen: 127.0.0.1:9000\nusers:\n  - name: a\n"
                 "    access_key: AK1\n    secret_key: s1\n");
    set_env_creds(NULL, NULL);
    is_int(load(&s, ARGV("--config", path, "--check-config"), &code), 1, "check exits");
    is_int(code, 0, "exit 0");
    is_str(out_text, "configuration OK\n", "OK printed");
    is_str(err_text, "", "nothing on stderr");
    unlink(path);

    write_config(path, sizeof(path),
                 "listen: 127.0.0.1:9000\n"
                 "limits:\n"
                 "  max_header_size: 64KiB\n"
                 "  header_timeout: 30s\n"
                 "  listne: 3\n");
    is_int(load(&s, ARGV("--check-config", "--config", path), &code), 1, "bad config exits");
    is_int(code, 1, "exit 1");
    is_str(out_text, "", "no OK");
    ok(strstr(err_text, ": line 5: unknown key 'listne' in 'limits'") != NULL,
       "error names the line");
    printf("# %s", err_text);
    unlink(path);

    write_config(path, sizeof(path), "listen: [broken\n");
    is_int(load(&s, ARGV("-t", "-c", path), &code), 1, "malformed YAML exits");
    is_int(code, 1, "exit 1");
    ok(strstr(err_text, "line 2: YAML syntax error") != NULL ||
           strstr(err_text, "line 1: YAML syntax error") != NULL,
       "syntax error with a line");
    unlink(path);

    is_int(load(&s, ARGV("-t", "-c", "/nonexistent/floodgate.yaml"), &code), 1, "missing file");
    is_int(code, 1, "exit 1");
    ok(strstr(err_text, "/nonexistent/floodgate.yaml: cannot open") != NULL,
       "missing file message");
}

static void test_missing_credentials(void)
{
    struct fg_settings s;
    int code;

    set_env_creds(NULL, NULL);
    is_int(load(&s, ARGV("--listen", "127.0.0.1:0"), &code), 1, "no credentials exits");
    is_int(code, 1, "exit 1");
    is_str(err_text,
           "floodgate: no credentials: set FLOODGATE_ACCESS_KEY and FLOODGATE_SECRET_KEY or "
           "users: in the config\n",
           "no credentials message");

    set_env_creds("AKONLY", NULL);
    is_int(load(&s, ARGV("--listen", "127.0.0.1:0"), &code), 1, "half credentials exits");
    is_str(err_text, "floodgate: FLOODGATE_ACCESS_KEY is set but FLOODGATE_SECRET_KEY is not\n",
           "half credentials message");

    set_env_creds("AK BAD", "secret");
    is_int(load(&s, ARGV("--listen", "127.0.0.1:0"), &code), 1, "bad env access key");
    ok(strstr(err_text, "access key of user 'admin' must not contain") != NULL,
       "bad env access key message");
    set_env_creds(NULL, NULL);
}

static void test_version_and_help(void)
{
    struct fg_settings s;
    int code;

    is_int(load(&s, ARGV("--version"), &code), 1, "--version exits");
    is_int(code, 0, "exit 0");
    is_str(out_text, "floodgate " FG_VERSION "\n", "version text");

    is_int(load(&s, ARGV("--help"), &code), 1, "--help exits");
    is_int(code, 0, "exit 0");
    ok(strstr(out_text, "--listen ADDR") != NULL && strstr(out_text, "--check-config") != NULL,
       "help lists options");
    ok(strstr(out_text, "--services FILE") != NULL, "help lists --services");
}

static void test_bad_command_lines(void)
{
    struct fg_settings s;
    int code;

    set_env_creds("AKENV", "env-secret");
    is_int(load(&s, ARGV("--bogus"), &code), 1, "unknown option");
    is_int(code, 2, "usage exit 2");
    ok(strstr(err_text, "'--bogus'") != NULL, "unknown option named");
    is_int(load(&s, ARGV("-x"), &code), 1, "unknown short option");
    ok(strstr(err_text, "unknown option '-x'") != NULL, "short option named");
    is_int(load(&s, ARGV("--listen"), &code), 1, "missing value");
    is_int(code, 2, "usage exit 2");
    ok(strstr(err_text, "option '--listen' needs a value") != NULL, "missing value message");
    is_int(load(&s, ARGV("extra"), &code), 1, "positional argument");
    is_int(code, 2, "usage exit 2");

    is_int(load(&s, ARGV("--listen", "nohostport"), &code), 1, "bad listen");
    is_int(code, 1, "exit 1");
    ok(strstr(err_text, "expected address:port") != NULL, "bad listen message");
    is_int(load(&s, ARGV("--listen", "localhost:9000"), &code), 1, "host name");
    ok(strstr(err_text, "'localhost' is not a numeric IPv4 or IPv6 address") != NULL,
       "host name message");
    is_int(load(&s, ARGV("--listen", "127.0.0.1:70000"), &code), 1, "bad port");
    is_int(load(&s, ARGV("--listen", "[::1]9000"), &code), 1, "bracket without colon");
    /* what h1_server_listen() takes */
    static char *good[] = {":9000", "*:0", "[::]:9000", "0.0.0.0:1", "::1:9000"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        is_int(load(&s, ARGV("--listen", good[i]), &code), 0, good[i]);
        fg_settings_cleanup(&s);
    }
    is_int(load(&s, ARGV("--log-level", "loud"), &code), 1, "bad log level");
    ok(strstr(err_text, "unknown log level 'loud'") != NULL, "bad log level message");
    is_int(load(&s, ARGV("--data-dir", ""), &code), 1, "empty data dir");
    ok(strstr(err_text, "'data_dir' must not be empty") != NULL, "empty data dir message");
    /* the last of repeated options wins */
    is_int(load(&s, ARGV("--region", "a", "--region", "b"), &code), 0, "repeated option");
    is_str(s.s3.region, "b", "last wins");
    fg_settings_cleanup(&s);
}

static void test_bad_values_in_file(void)
{
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"users:\n  - name: a\n    access_key: AK1\n    secret_key: ''\n",
         "line 4: 'users[0].secret_key' must not be empty"},
        {"users:\n  - name: a\n    access_key: AK1\n", "line 2: missing required key "
                                                       "'secret_key' in 'users[0]'"},
        {"users:\n  - {name: a, access_key: AK1, secret_key: x}\n"
         "  - {name: b, access_key: AK1, secret_key: y}\n",
         "line 2: 'users': users 'a' and 'b' have the same access key"},
        {"users:\n  - {name: a, access_key: 'A/K', secret_key: x}\n",
         "line 2: 'users[0].access_key': must not contain"},
        {"listen: 127.0.0.1\n", "line 1: 'listen': expected address:port"},
        {"log_level: chatty\n", "line 1: 'log_level': unknown log level 'chatty'"},
        {"limits:\n  max_headers: 0\n", "line 2: 'limits.max_headers': 0 is out of range"},
        {"store:\n  disk_threads: lots\n", "line 2: 'store.disk_threads': expected"},
        {"auth:\n  max_skew: 500ms\n", "line 2: 'auth.max_skew': '500ms' is not a whole"},
        {"limits: 5\n", "line 1: 'limits' must be a mapping"},
        {"listen: :2\nlisten: :3\n", "line 2: duplicate key 'listen' (first on line 1)"},
    };
    struct fg_settings s;
    int code;
    char path[64];

    set_env_creds("AKENV", "env-secret");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_config(path, sizeof(path), cases[i].yaml);
        is_int(load(&s, ARGV("-c", path), &code), 1, cases[i].want);
        if (!ok(strstr(err_text, cases[i].want) != NULL, cases[i].want))
            printf("#   stderr: %s", err_text);
        unlink(path);
    }
}

/* Writes `text` to dir/name; the path goes to `path`. */
static void write_in(char *path, size_t cap, const char *dir, const char *name, const char *text)
{
    FILE *f;

    snprintf(path, cap, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0)
        printf("# cannot write %s\n", path);
    if (f != NULL)
        fclose(f);
}

static void remove_in(const char *dir, const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
}

/* An OSCAR FDL file as oscar-cli takes it: a cluster id per entry, fields floodgate ignores,
 * script files next to it, storage_providers and clusters. */
static const char fdl_text[] = "functions:\n"
                               "  oscar:\n"
                               "  - oscar-cluster:\n"
                               "      name: grayify\n" /* line 4 */
                               "      memory: 1Gi\n"
                               "      cpu: '1.0'\n"
                               "      image: grycap/imagemagick\n"
                               "      script: script.sh\n"
                               "      log_level: CRITICAL\n"
                               "      input:\n"
                               "      - storage_provider: minio.default\n"
                               "        path: grayify/in\n"
                               "      output:\n"
                               "      - storage_provider: minio.default\n"
                               "        path: grayify/out\n"
                               "  - edge:\n"
                               "      name: blur\n" /* line 17 */
                               "      image: grycap/blur\n"
                               "      script: sub/blur.sh\n"
                               "      enable_gpu: true\n"
                               "      input:\n"
                               "      - storage_provider: minio.default\n"
                               "        path: blur\n"
                               "storage_providers:\n"
                               "  minio:\n"
                               "    cloud:\n"
                               "      endpoint: https://minio.cloud.example.org\n"
                               "      access_key: CHANGEME\n"
                               "      secret_key: CHANGEME\n"
                               "      verify: true\n"
                               "clusters:\n"
                               "  edge: {endpoint: 'https://edge.example.org', auth_user: u}\n";

static void test_services_from_an_fdl_file(void)
{
    char cdir[] = "/tmp/fg_test_cfg_XXXXXX", fdir[] = "/tmp/fg_test_fdl_XXXXXX";
    char base[256], fdl[256], path[256];
    struct fg_settings s;
    int code;

    set_env_creds("AKENV", "env-secret");
    if (mkdtemp(cdir) == NULL || mkdtemp(fdir) == NULL) {
        ok(0, "temp dirs");
        return;
    }
    snprintf(path, sizeof(path), "%s/sub", fdir);
    mkdir(path, 0700);
    write_in(path, sizeof(path), cdir, "local.sh", "echo local\n");
    write_in(path, sizeof(path), fdir, "script.sh", "echo gray\n");
    write_in(path, sizeof(path), fdir, "sub/blur.sh", "echo blur\n");
    write_in(base, sizeof(base), cdir, "base.yaml",
             "listen: 127.0.0.1:9000\n"
             "services:\n"
             "  - name: local\n" /* line 3 */
             "    script: local.sh\n"
             "    input: [{path: inbox}]\n");
    write_in(fdl, sizeof(fdl), fdir, "fdl.yaml", fdl_text);

    is_int(load(&s, ARGV("--config", base, "--services", fdl), &code), 0, "config + FDL file");
    is_str(err_text, "", "nothing on stderr");
    is_int(s.n_services, 3, "the config's service, then the FDL's two");
    if (s.n_services == 3) {
        is_str(s.services[0].name, "local", "config service first");
        is_str(s.services[0].script_text, "echo local\n", "its script, next to the config");
        is_str(s.services[1].name, "grayify", "first FDL service");
        is_str(s.services[1].script_text, "echo gray\n", "its script, next to the FDL file");
        is_str(s.services[1].cluster_id, "oscar-cluster", "cluster id from the FDL key");
        is_str(s.services[1].memory, "1Gi", "memory");
        is_str(s.services[1].cpu, "1.0", "cpu");
        is_str(s.services[1].image, "grycap/imagemagick", "image");
        is_int(s.services[1].n_output, 1, "output");
        is_str(s.services[1].input[0].storage_provider, "minio.default", "storage provider");
        is_str(s.services[1].input[0].path, "grayify/in", "input path");
        is_str(s.services[2].name, "blur", "second FDL service");
        is_str(s.services[2].script_text, "echo blur\n", "script in a folder of the FDL's");
        is_str(s.services[2].cluster_id, "edge", "its cluster id");
        is_str(s.services[2].pool, "default", "floodgate defaults apply");
    }
    ok(s.fdl.services == NULL && s.fdl.n_services == 0, "nothing left in the scratch field");
    fg_settings_cleanup(&s);

    /* an FDL file alone, with --check-config */
    is_int(load(&s, ARGV("--services", fdl, "--check-config"), &code), 1, "FDL alone checks");
    is_int(code, 0, "exit 0");
    is_str(out_text, "configuration OK\n", "OK printed");

    /* the FDL shape in the config file itself, after its services: */
    write_in(base, sizeof(base), fdir, "both.yaml",
             "services:\n"
             "  - {name: first, script: script.sh, input: [{path: one}]}\n"
             "functions:\n"
             "  oscar:\n"
             "    - c1: {name: second, script: script.sh, input: [{path: two}]}\n"
             "storage_providers: {}\n");
    is_int(load(&s, ARGV("-c", base), &code), 0, "FDL keys in the config file");
    is_int(s.n_services, 2, "both kinds");
    if (s.n_services == 2) {
        is_str(s.services[0].name, "first", "services: first");
        is_str(s.services[1].name, "second", "then functions.oscar");
        is_str(s.services[1].script_text, "echo gray\n", "script next to the config");
    }
    fg_settings_cleanup(&s);

    /* two --services files add up */
    write_in(path, sizeof(path), cdir, "more.yaml",
             "services:\n  - {name: more, script: local.sh, input: [{path: more}]}\n");
    is_int(load(&s, ARGV("--services", fdl, "--services", path), &code), 0, "two files");
    is_int(s.n_services, 3, "every file's services");
    if (s.n_services == 3)
        is_str(s.services[2].script_text, "echo local\n", "each relative to its own file");
    fg_settings_cleanup(&s);

    remove_in(cdir, "local.sh");
    remove_in(cdir, "base.yaml");
    remove_in(cdir, "more.yaml");
    remove_in(fdir, "script.sh");
    remove_in(fdir, "sub/blur.sh");
    remove_in(fdir, "fdl.yaml");
    remove_in(fdir, "both.yaml");
    snprintf(path, sizeof(path), "%s/sub", fdir);
    rmdir(path);
    rmdir(cdir);
    rmdir(fdir);
}

static void test_services_file_errors_name_file_and_line(void)
{
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"functions:\n  oscar:\n  - c:\n      name: a\n      script: ok.sh\n"
         "      input: [{path: abc}]\n  - c:\n      name: b\n      scrpit: ok.sh\n",
         "svc.yaml: line 9: unknown key 'scrpit' in 'functions.oscar[1].c'"},
        {"functions:\n  oscar:\n  - c: {name: a, script: ok.sh, input: [{path: abc}]}\n"
         "  - d: {name: a, script: ok.sh, input: [{path: def}]}\n",
         "svc.yaml: line 4: service 'a' is defined twice (first on line 3)"},
        {"functions:\n  oscar:\n  - c:\n      name: one\n      script: missing.sh\n"
         "      input: [{path: abc}]\n",
         "svc.yaml: line 4: service 'one': script file '"},
        {"functions:\n  oscar:\n  - c:\n      name: Bad_Name\n      input: [{path: abc}]\n",
         "svc.yaml: line 4: service 'Bad_Name': service name"},
        {"functions:\n  aws:\n  - lambda: {name: x}\n", "svc.yaml: line 2: unknown key 'aws' in "
                                                        "'functions'"},
        {"functions:\n  oscar: text\n", "svc.yaml: line 2: 'functions.oscar' must be a mapping or "
                                        "a list of mappings"},
        {"storage_providers: [minio]\n",
         "svc.yaml: line 1: 'storage_providers' must be a mapping, not a list"},
        {"listen: 127.0.0.1:9000\n", "svc.yaml: line 1: unknown key 'listen'"},
        {"services:\n  - {name: dup, script: ok.sh, input: [{path: abc}]}\n",
         "svc.yaml: line 2: service 'dup' is defined twice (first in "},
    };
    char dir[] = "/tmp/fg_test_svc_XXXXXX";
    char base[256], file[256], script[256];
    struct fg_settings s;
    int code;

    set_env_creds("AKENV", "env-secret");
    if (mkdtemp(dir) == NULL) {
        ok(0, "temp dir");
        return;
    }
    write_in(script, sizeof(script), dir, "ok.sh", "true\n");
    write_in(base, sizeof(base), dir, "base.yaml",
             "services:\n"
             "  - name: dup\n"
             "    script: ok.sh\n"
             "    input: [{path: abc}]\n");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_in(file, sizeof(file), dir, "svc.yaml", cases[i].yaml);
        is_int(load(&s, ARGV("-c", base, "--services", file), &code), 1, cases[i].want);
        is_int(code, 1, "exit 1");
        if (!ok(strstr(err_text, cases[i].want) != NULL, cases[i].want))
            printf("#   stderr: %s", err_text);
    }
    ok(strstr(err_text, "base.yaml, line 2)") != NULL, "the first definition's file and line");

    is_int(load(&s, ARGV("--services", "/nonexistent/fdl.yaml"), &code), 1, "missing file");
    ok(strstr(err_text, "floodgate: /nonexistent/fdl.yaml: cannot open") != NULL,
       "missing file named");
    is_int(load(&s, ARGV("--services"), &code), 1, "--services needs a value");
    is_int(code, 2, "usage exit 2");
    remove_in(dir, "ok.sh");
    remove_in(dir, "base.yaml");
    remove_in(dir, "svc.yaml");
    rmdir(dir);
}

static void test_example_config_passes_check(void)
{
    /* ctest runs unit tests from the source root. */
    char path[] = "examples/floodgate.yaml";
    struct fg_settings s;
    int code;

    set_env_creds(NULL, NULL);
    is_int(load(&s, ARGV("-c", path, "--check-config"), &code), 1, "example checks");
    is_int(code, 0, "example is valid");
    is_str(out_text, "configuration OK\n", "example OK");
    if (code != 0)
        printf("#   stderr: %s", err_text);

    is_int(load(&s, ARGV("-c", path), &code), 0, "example loads");
    is_int(s.s3.n_users, 2, "example users");
    is_str(s.s3.domain, "s3.local", "example domain");
    is_str(s.error_log, "-", "error_log: stderr is stored as -");
    is_str(s.access_log, "-", "access_log: stdout is stored as -");
    fg_settings_cleanup(&s);
}

/* The tables' defaults are the values h1.h and s3api.h document. */
static void test_module_defaults(void)
{
    struct h1_limits l;
    struct s3_config c;

    memset(&l, 0, sizeof(l));
    conf_defaults(h1_limits_keys, &l);
    {
        struct h1_limits d;
        h1_limits_default(&d);
        ok(l.max_header_bytes == d.max_header_bytes && l.max_headers == d.max_headers &&
               l.max_url_bytes == d.max_url_bytes && l.max_trailer_bytes == d.max_trailer_bytes &&
               l.header_timeout_ms == d.header_timeout_ms &&
               l.idle_timeout_ms == d.idle_timeout_ms && l.body_timeout_ms == d.body_timeout_ms &&
               l.write_timeout_ms == d.write_timeout_ms && l.max_conns == d.max_conns &&
               l.read_high_water == d.read_high_water && l.write_low_water == d.write_low_water,
           "table defaults equal h1_limits_default()");
    }
    is_int(l.max_header_bytes, 64 * 1024, "max_header_bytes");
    is_int(l.max_headers, 128, "max_headers");
    is_int(l.max_url_bytes, 8 * 1024, "max_url_bytes");
    is_int(l.max_trailer_bytes, 16 * 1024, "max_trailer_bytes");
    is_int(l.header_timeout_ms, 30000, "header_timeout_ms");
    is_int(l.idle_timeout_ms, 60000, "idle_timeout_ms");
    is_int(l.body_timeout_ms, 60000, "body_timeout_ms");
    is_int(l.write_timeout_ms, 60000, "write_timeout_ms");
    is_int(l.max_conns, 4096, "max_conns");
    is_int(l.read_high_water, 256 * 1024, "read_high_water");
    is_int(l.write_low_water, 256 * 1024, "write_low_water");

    s3_config_init(&c);
    ok(c.data_dir == NULL, "data_dir unset");
    is_str(c.region, "us-east-1", "region");
    ok(c.domain == NULL, "domain off");
    ok(c.users == NULL && c.n_users == 0, "no users");
    ok(c.sigv2, "sigv2");
    is_int(c.max_skew_s, 900, "max_skew_s");
    ok(c.max_object_bytes == 5ULL << 30, "max_object_bytes");
    ok(c.inline_max_bytes == 64 * 1024ULL, "inline_max_bytes");
    is_int(c.upload_max_age_s, 7 * 86400, "upload_max_age_s");
    is_int(c.disk_threads, 4, "disk_threads");
    s3_config_cleanup(&c);
    ok(c.region == NULL, "cleanup frees region");
    s3_config_cleanup(&c);
}

int main(void)
{
    subtest(test_cli_only_with_env_credentials);
    subtest(test_config_file_then_cli_override);
    subtest(test_check_config);
    subtest(test_missing_credentials);
    subtest(test_version_and_help);
    subtest(test_bad_command_lines);
    subtest(test_bad_values_in_file);
    subtest(test_services_from_an_fdl_file);
    subtest(test_services_file_errors_name_file_and_line);
    subtest(test_example_config_passes_check);
    subtest(test_module_defaults);
    return done_testing();
}
