/* Outbox records (record.c): the binary form of queue.h, parsed in place. Read by the relay
 * and by floodgate-worker, whose stream entries carry a relayed job's record. Private to
 * queue/. */
#ifndef FG_QUEUE_RECORD_H
#define FG_QUEUE_RECORD_H

#include <stddef.h>

#include "gateway/span.h"

#define QUEUE_REC_MAX_FIELDS 64 /* more is not a record of ours */
struct queue_rec {
    char kind; /* 'j', 'n', or whatever the record says */
    size_t n_fields;
    struct span names[QUEUE_REC_MAX_FIELDS]; /* point into the record */
    struct span values[QUEUE_REC_MAX_FIELDS];
};
/* 0, or -1 with *why (a literal) when the bytes are not a well-formed record. */
int queue_rec_parse(const void *data, size_t len, struct queue_rec *out, const char **why);
/* The first field called name; {NULL, 0} when there is none. */
struct span queue_rec_get(const struct queue_rec *r, const char *name);
/* 0 with *out when the record has exactly one non-empty field called name, else -1. */
int queue_rec_need(const struct queue_rec *r, const char *name, struct span *out);

#endif
