/* The shared protocol's helpers: Redis URL parsing, key building and script hashes. */
#include <stdio.h>
#include <string.h>

#include "queue/keys.h"
#include "tests/unit/tap.h"

static void test_url_parses_host_port_password_db(void)
{
    struct qk_url u;
    is_int(qk_parse_url("redis://127.0.0.1:6380/2", &u), 0, "full URL");
    is_str(u.host, "127.0.0.1", "host");
    is_int(u.port, 6380, "port");
    is_int(u.db, 2, "db");
    is_str(u.password, "", "no password");

    is_int(qk_parse_url("redis://:s3cret@localhost", &u), 0, "password, default port");
    is_str(u.password, "s3cret", "password");
    is_str(u.host, "localhost", "host");
    is_int(u.port, 6379, "default port");
    is_int(u.db, 0, "default db");

    is_int(qk_parse_url("redis://user:pw@h:1/", &u), 0, "user:password and a bare slash");
    is_str(u.password, "pw", "the password after the user");
    is_int(u.port, 1, "port 1");

    is_int(qk_parse_url("10.0.0.1:7000", &u), 0, "host:port without a scheme");
    is_str(u.host, "10.0.0.1", "host");
    is_int(u.port, 7000, "port");

    is_int(qk_parse_url("redis://[::1]:6390", &u), 0, "IPv6 literal");
    is_str(u.host, "::1", "IPv6 host");
    is_int(u.port, 6390, "IPv6 port");
}

static void test_url_rejects_junk(void)
{
    struct qk_url u;
    const char *bad[] = {"",
                         "http://h:1",
                         "redis://",
                         "redis://h:0",
                         "redis://h:65536",
                         "redis://h:x",
                         "redis://h:1/x",
                         "redis://[::1",
                         "redis://h:1/-1",
                         "redis://:pw@"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "rejects '%s'", bad[i]);
        is_int(qk_parse_url(bad[i], &u), -1, name);
    }
    is_int(qk_parse_url(NULL, &u), -1, "rejects NULL");
}

static void test_keys_and_script_hashes(void)
{
    char buf[64];
    is_str(qk_key(buf, sizeof(buf), "fg:", "job:", "abc"), "fg:job:abc", "prefix kind name");
    is_str(qk_key(buf, sizeof(buf), "fg:", "delay", NULL), "fg:delay", "no name");
    is_str(qk_key(buf, 8, "fg:", "job:", "abcdef"), "fg:job:", "truncated to the buffer");
    qk_init();
    is_int(strlen(qk_enqueue.sha), 40, "enqueue sha is 40 hex digits");
    ok(strcmp(qk_enqueue.sha, qk_finish.sha) != 0, "scripts have distinct hashes");
}

int main(void)
{
    subtest(test_url_parses_host_port_password_db);
    subtest(test_url_rejects_junk);
    subtest(test_keys_and_script_hashes);
    return done_testing();
}
