/* conf: YAML configuration, parsed into a small node tree that keeps line numbers, then
 * applied to C structs through tables of keys that the modules own. conf/ knows no module:
 * it only parses, converts and checks what a table describes.
 *
 * A table is an array of struct conf_key ended by CONF_KEY_END. Each key names a field of the
 * struct the table describes (by offset), its type, its default (written in config syntax,
 * e.g. "64KiB"), limits, and for nested types a sub-table:
 *
 *     static const struct conf_key user_keys[] = {
 *         {.name = "name", .type = CONF_STRING, CONF_FIELD(struct user, name),
 *          .flags = CONF_REQUIRED | CONF_NONEMPTY},
 *         CONF_KEY_END,
 *     };
 *     const struct conf_key app_keys[] = {
 *         {.name = "timeout", .type = CONF_DURATION_MS, CONF_FIELD(struct app, timeout_ms),
 *          .dflt = "30s", .min = 1, .max = 3600000},
 *         {.name = "users", .type = CONF_LIST, .offset = offsetof(struct app, users),
 *          .sub = user_keys, .elem_size = sizeof(struct user), CONF_COUNT(struct app, n_users)},
 *         CONF_KEY_END,
 *     };
 *
 * Value syntax:
 *   bool      true/false, yes/no, on/off (any case)
 *   int/uint  decimal integers ("-3" only for CONF_INT)
 *   size      bytes with an optional unit, binary whatever its spelling: 512, 512B, 64K,
 *             64KB, 64KiB (= 65536), M/MB/MiB, G/GB/GiB, T/TB/TiB; case-insensitive
 *   duration  one or more <number><unit> with units ms, s, m, h, d, w ("1h30m", "500ms",
 *             "7d"); a bare number is seconds (as in nginx)
 *   string    any scalar; an empty plain scalar, "~" or "null" means unset (NULL)
 *
 * Not supported: YAML aliases/anchors and merge keys, several documents in one stream,
 * non-scalar mapping keys. Memory: conf/ aborts the process when malloc fails, like
 * gateway/xmalloc. Nothing here is thread-safe against concurrent use of the same struct. */
#ifndef FG_CONF_CONF_H
#define FG_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where and why parsing or applying failed. line is 1-based; 0 when no line applies (a file
 * that cannot be read, a command-line value). msg does not repeat the line. */
struct conf_error {
    int line;
    char msg[160];
};

/* ---- Node tree ---------------------------------------------------------------------- */

enum conf_node_kind {
    CONF_NODE_SCALAR,
    CONF_NODE_MAP, /* items: key, value, key, value, ... (keys are scalars) */
    CONF_NODE_SEQ,
};

struct conf_node {
    enum conf_node_kind kind;
    int line;                /* 1-based line where the node starts */
    bool is_null;            /* plain scalar "", "~", "null", "Null" or "NULL" */
    char *value;             /* CONF_NODE_SCALAR: NUL-terminated (NUL bytes are rejected) */
    struct conf_node *items; /* CONF_NODE_MAP and CONF_NODE_SEQ */
    size_t n_items;
};

#define CONF_MAX_INPUT_BYTES (1u << 20) /* larger files and strings are refused */
#define CONF_MAX_DEPTH       32         /* nesting of mappings and sequences */

/* Parses one YAML document. An empty input (or a document that is only null) gives an empty
 * mapping. Returns a tree the caller frees with conf_node_free(), or NULL with `err` filled
 * (libyaml's line for syntax errors). `data` need not be NUL-terminated. */
struct conf_node *conf_parse(const char *data, size_t len, struct conf_error *err);
/* Reads and parses the file at `path`; errors as conf_parse (line 0: cannot read). */
struct conf_node *conf_parse_file(const char *path, struct conf_error *err);
/* Accepts NULL. */
void conf_node_free(struct conf_node *node);
/* The value of key `name` in the mapping `map`; NULL when absent or `map` is not a mapping
 * (NULL accepted). */
const struct conf_node *conf_node_get(const struct conf_node *map, const char *name);

/* ---- Tables ------------------------------------------------------------------------- */

enum conf_type {
    CONF_TYPE_END = 0, /* terminates a table (CONF_KEY_END) */
    CONF_STRING,       /* char *, heap-allocated; NULL when unset */
    CONF_BOOL,         /* bool */
    CONF_INT,          /* signed integer, `width` bytes */
    CONF_UINT,         /* unsigned integer, `width` bytes */
    CONF_SIZE,         /* unsigned byte count, `width` bytes */
    CONF_DURATION_MS,  /* unsigned duration in milliseconds, `width` bytes */
    CONF_DURATION_S,   /* unsigned duration in whole seconds, `width` bytes */
    CONF_SECTION,      /* nested mapping: struct at `offset` described by `sub` (offset 0
                        * and a sub-table over the same struct groups keys without a
                        * nested struct) */
    CONF_LIST,         /* sequence of mappings: pointer at `offset` to an array of
                        * `elem_size` structs described by `sub`; size_t count at count_offset */
    CONF_STRING_LIST,  /* sequence of scalars: char ** at `offset`; size_t at count_offset */
    CONF_STRING_MAP,   /* mapping of any scalar keys to scalar values: struct conf_kv * at
                        * `offset` (in document order, keys unique; a null value is "");
                        * size_t at count_offset */
    CONF_INCLUDE,      /* no key of its own: the keys of `sub` appear at this level and
                        * describe the struct at `offset` (lets a module's table be embedded
                        * in a parent without a nesting level) */
    CONF_SECTION_MAP,  /* mapping of any keys to mappings described by `sub`, or a list of such
                        * mappings whose entries are concatenated (OSCAR FDL's
                        * `oscar: [{cluster-a: {...}}, {cluster-a: {...}}]`: a key repeats
                        * across items, not within one): pointer at `offset` to an array of
                        * `elem_size` structs in document order, size_t count at count_offset;
                        * each element's key (heap) in the char * at key_offset of the element,
                        * written after the element's own keys, so it wins over them */
    CONF_ANY_MAP,      /* a mapping (or null) whose content is not read: no field, `offset`
                        * unused. For sections another program reads (FDL's storage_providers) */
};

enum conf_flag {
    CONF_REQUIRED = 1u << 0, /* absent from a mapping of the document -> error (a section
                              * absent as a whole is not checked) */
    CONF_NONEMPTY = 1u << 1, /* CONF_STRING: "" and null are errors */
};

/* One entry of a CONF_STRING_MAP; both strings heap-allocated. */
struct conf_kv {
    char *key;
    char *value;
};

struct conf_key;

/* Extra validation run after `key` was set from a document or conf_set(). `base` is the
 * struct the key's table describes. Returns 0, or -1 with a reason written to msg. */
typedef int conf_check_cb(const void *base, const struct conf_key *key, char *msg, size_t msg_cap);

struct conf_key {
    const char *name;
    enum conf_type type;
    size_t offset;              /* of the field within the struct the table describes */
    size_t width;               /* sizeof the field, for bool and the integer types */
    const char *dflt;           /* default in config syntax; NULL: NULL, 0, false, empty */
    long long min, max;         /* inclusive bounds, in the stored unit; both 0: only the
                                 * field's own range applies */
    const struct conf_key *sub; /* CONF_SECTION, CONF_LIST, CONF_INCLUDE, CONF_SECTION_MAP */
    size_t elem_size;           /* CONF_LIST, CONF_SECTION_MAP: sizeof one element */
    size_t count_offset;        /* CONF_LIST, CONF_STRING_LIST, CONF_STRING_MAP,
                                 * CONF_SECTION_MAP: a size_t element count */
    size_t key_offset;          /* CONF_SECTION_MAP: a char * in each element (always written;
                                 * it may be a field of `sub`) */
    unsigned flags;             /* enum conf_flag */
    conf_check_cb *check;       /* optional */
    const char *help;           /* optional one-line description */
};

#define CONF_KEY_END                                                                               \
    {                                                                                              \
        .name = NULL, .type = CONF_TYPE_END                                                        \
    }
/* Designated-initializer helpers: the field's offset and width, and a list's count field. */
#define CONF_FIELD(type, member)                                                                   \
    .offset = offsetof(type, member), .width = sizeof(((type *)0)->member)
#define CONF_COUNT(type, member) .count_offset = offsetof(type, member)
/* CONF_SECTION_MAP: the member of the element struct that gets the element's key. */
#define CONF_KEY_FIELD(type, member) .key_offset = offsetof(type, member)

/* Writes every key's default into `base`, recursing into sections and includes; lists become
 * empty. Owned fields are overwritten, not freed: `base` must hold none (zeroed, or after
 * conf_free()). Aborts on a default the table cannot parse (a bug in the table). */
void conf_defaults(const struct conf_key *table, void *base);

/* Sets the keys present in the mapping `root` (others keep their values). Elements of lists
 * start from their table's defaults. On error `base` stays consistent (conf_free() releases
 * it) but may be partly updated. */
int conf_apply(const struct conf_key *table, void *base, const struct conf_node *root,
               struct conf_error *err);

/* Resets `base` to the table's defaults (freeing what it held: it must be zeroed or hold
 * values set through this API) and applies the document. 0, or -1 with `err` filled; either
 * way release `base` with conf_free(). */
int conf_load_string(const struct conf_key *table, void *base, const char *data, size_t len,
                     struct conf_error *err);
int conf_load_file(const struct conf_key *table, void *base, const char *path,
                   struct conf_error *err);

/* Sets one scalar key from text, as a document would (conversion, limits, check hook), e.g.
 * for a command-line override. `path` is dotted through sections ("limits.header_timeout");
 * included keys are found by their own names. Lists and maps cannot be set this way. 0, or -1 with
 * `err` (line 0). */
int conf_set(const struct conf_key *table, void *base, const char *path, const char *value,
             struct conf_error *err);

/* Frees what the table allocated in `base` (strings, lists) and resets those fields to
 * NULL/0. Accepts a NULL base; safe to call twice. */
void conf_free(const struct conf_key *table, void *base);

/* ---- Value syntax, for callers that read values elsewhere (all 0 or -1) -------------- */

int conf_parse_bool(const char *s, bool *out);
int conf_parse_uint(const char *s, uint64_t *out); /* decimal digits only */
int conf_parse_int(const char *s, int64_t *out);   /* optional '-' or '+', then digits */
int conf_parse_size(const char *s, uint64_t *out);
int conf_parse_duration_ms(const char *s, uint64_t *out);

#endif
