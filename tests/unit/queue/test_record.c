/* The outbox record's binary form, parsed in place: queue.h's example bytes, and the ways a
 * record can be malformed. */
#include <string.h>

#include "queue/internal.h"
#include "tests/unit/outbox_example.h"
#include "tests/unit/tap.h"

static void test_record_parses_the_example_of_queue_h(void)
{
    struct queue_rec r;
    const char *why = NULL;
    is_int(queue_rec_parse(outbox_example, sizeof(outbox_example) - 1, &r, &why), 0, "parses");
    is_int(r.kind, 'n', "kind n");
    is_int(r.n_fields, 4, "four fields");
    struct span v = queue_rec_get(&r, "target");
    ok(v.len == 1 && memcmp(v.ptr, "t", 1) == 0, "target t");
    ok(v.ptr > outbox_example && v.ptr < outbox_example + sizeof(outbox_example),
       "points into the record");
    struct span body;
    is_int(queue_rec_need(&r, "body", &body), 0, "body present");
    ok(body.len == 2 && memcmp(body.ptr, "{}", 2) == 0, "body {}");
    v = queue_rec_get(&r, "created_ms");
    ok(v.len == 1 && v.ptr[0] == '5', "created_ms 5");
    is_int(queue_rec_need(&r, "missing", &body), -1, "a missing field");
}

static void test_record_rejects_malformed_bytes(void)
{
    struct queue_rec r;
    const char *why = NULL;
    is_int(queue_rec_parse("", 0, &r, &why), -1, "empty");
    is_int(queue_rec_parse("FR2n", 4, &r, &why), -1, "another magic");
    is_int(queue_rec_parse("{\"kind\":\"job\"}", 14, &r, &why), -1, "JSON");
    /* every cut inside a field fails; a cut between two whole fields is a shorter record */
    size_t n_ok = 0, n_bad = 0;
    for (size_t cut = 5; cut < sizeof(outbox_example) - 1; cut++) {
        why = NULL;
        if (queue_rec_parse(outbox_example, cut, &r, &why) == 0)
            n_ok++;
        else if (why != NULL)
            n_bad++;
    }
    is_int(n_ok, 3, "three cuts fall between fields");
    is_int(n_bad, sizeof(outbox_example) - 1 - 5 - 3, "every other cut is refused with a reason");
    is_int(queue_rec_parse("FR1j\xff\xff\xff\xff", 8, &r, &why), -1, "a length past the end");
    is_int(queue_rec_parse("FR1j\x00\x00\x00\x00\x00\x00\x00\x00", 12, &r, &why), -1,
           "an empty name");
    is_int(queue_rec_parse("FR1j", 4, &r, &why), 0, "no fields is well formed");
    const char dup[] = "FR1j\x02\x00\x00\x00id\x01\x00\x00\x00"
                       "a\x02\x00\x00\x00id\x01\x00\x00\x00"
                       "b";
    is_int(queue_rec_parse(dup, sizeof(dup) - 1, &r, &why), 0, "duplicates parse");
    struct span v;
    is_int(queue_rec_need(&r, "id", &v), -1, "but a needed field must be there once");
}

int main(void)
{
    subtest(test_record_parses_the_example_of_queue_h);
    subtest(test_record_rejects_malformed_bytes);
    return done_testing();
}
