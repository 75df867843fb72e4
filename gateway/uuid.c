/* v4-shaped UUIDs for event, delivery and job ids (see uuid.h). */
#include "gateway/uuid.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>

#include "gateway/xmalloc.h"

/* Ids name deliveries and jobs (receivers dedupe deliveries on them), so they must be unique,
 * not secret. A getrandom() per id cost more than the rest of the hook, so each thread draws 128
 * random bits once and then counts: an id is the thread's 64 high random bits and its 64 low
 * bits plus a counter, shaped as a v4 UUID (the version and variant bits overwrite 4 high and
 * 2 low bits). Within a thread ids repeat only after 2^62 of them; two threads (of any
 * process, on any host) collide only if their 60 remaining high bits are equal (2^-60 for a
 * pair) and their counters overlap. A forked child draws new bits (pthread_atfork), since it
 * would otherwise repeat its parent's sequence. */
static _Atomic unsigned fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static _Thread_local struct {
    uint64_t hi, lo;
    unsigned gen; /* fork_gen when drawn; 0: never */
} ids;

static void on_fork_child(void)
{
    fork_gen++;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static void random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        ASSERT(n > 0); /* the kernel's CSPRNG does not fail once seeded */
        got += (size_t)n;
    }
}

static uint64_t load_be64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void gw_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned gen = fork_gen;
    unsigned char b[16];
    size_t o = 0;

    if (ids.gen != gen) {
        pthread_once(&atfork_once, register_atfork);
        random_bytes(b, sizeof(b));
        ids.hi = load_be64(b);
        ids.lo = load_be64(b + 8);
        ids.gen = gen;
    }
    ids.lo++;
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(ids.hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(ids.lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 (RFC 4122) */
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}
