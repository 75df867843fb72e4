/* queue/queue.h's example outbox record, byte for byte: notify/'s writer must produce it and
 * queue/'s parser and relay must read it, so both sides' tests include this one copy. */
#ifndef FG_TESTS_UNIT_OUTBOX_EXAMPLE_H
#define FG_TESTS_UNIT_OUTBOX_EXAMPLE_H

/* kind 'n': id "u1", target "t", body "{}", created_ms "5" (sizeof - 1 bytes) */
static const char outbox_example[] = "FR1n"
                                     "\x02\x00\x00\x00"
                                     "id"
                                     "\x02\x00\x00\x00"
                                     "u1"
                                     "\x06\x00\x00\x00"
                                     "target"
                                     "\x01\x00\x00\x00"
                                     "t"
                                     "\x04\x00\x00\x00"
                                     "body"
                                     "\x02\x00\x00\x00"
                                     "{}"
                                     "\x0a\x00\x00\x00"
                                     "created_ms"
                                     "\x01\x00\x00\x00"
                                     "5";

#endif
