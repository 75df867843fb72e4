/* conf: applies a node tree to a struct through a key table (defaults, conversion, limits,
 * unknown and duplicate keys, required keys, check hooks) and frees what tables allocated.
 * The YAML reader is node.c; value syntax is value.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/internal.h"

#define PATH_CAP 128 /* "section.list[12].key" for messages; longer paths are truncated */

/* A broken table is a bug in the program, not in the configuration. */
static void __attribute__((noreturn)) table_bug(const struct conf_key *k, const char *what)
{
    fprintf(stderr, "conf: bad table entry '%s': %s\n", k->name != NULL ? k->name : "(include)",
            what);
    abort();
}

static void join_path(char *out, const char *parent, const char *name)
{
    if (parent[0] == '\0')
        snprintf(out, PATH_CAP, "%s", name);
    else
        snprintf(out, PATH_CAP, "%s.%s", parent, name);
}

/* ---- Field access --------------------------------------------------------------------- */

/* Pointer fields are read and written with memcpy: the field may be `struct user *` or
 * `char **`, which C does not let us alias as `void *`. */
static void *get_ptr(const char *field)
{
    void *p;
    memcpy(&p, field, sizeof(p));
    return p;
}

static void set_ptr(char *field, const void *p)
{
    memcpy(field, &p, sizeof(p));
}

static size_t get_count(const char *base, const struct conf_key *k)
{
    size_t n;
    memcpy(&n, base + k->count_offset, sizeof(n));
    return n;
}

static void set_count(char *base, const struct conf_key *k, size_t n)
{
    memcpy(base + k->count_offset, &n, sizeof(n));
}

static uint64_t width_max(const struct conf_key *k)
{
    switch (k->width) {
    case 1:
        return UINT8_MAX;
    case 2:
        return UINT16_MAX;
    case 4:
        return UINT32_MAX;
    case 8:
        return UINT64_MAX;
    default:
        table_bug(k, "integer width must be 1, 2, 4 or 8");
    }
}

static void store_uint(char *field, const struct conf_key *k, uint64_t v)
{
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;

    switch (k->width) {
    case 1:
        memcpy(field, &u8, 1);
        break;
    case 2:
        memcpy(field, &u16, 2);
        break;
    case 4:
        memcpy(field, &u32, 4);
        break;
    case 8:
        memcpy(field, &v, 8);
        break;
    default:
        table_bug(k, "integer width must be 1, 2, 4 or 8");
    }
}

/* Truncating the two's-complement bits gives the narrower signed value: one store for both. */
static void store_int(char *field, const struct conf_key *k, int64_t v)
{
    store_uint(field, k, (uint64_t)v);
}

static bool has_limits(const struct conf_key *k)
{
    return k->min != 0 || k->max != 0;
}

static bool uint_in_range(const struct conf_key *k, uint64_t u)
{
    if (u > width_max(k))
        return false;
    if (!has_limits(k))
        return true;
    if (k->min > 0 && u < (uint64_t)k->min)
        return false;
    return k->max >= 0 && u <= (uint64_t)k->max;
}

/* ---- Scalars -------------------------------------------------------------------------- */

static const char *unit_name(const struct conf_key *k)
{
    switch (k->type) {
    case CONF_SIZE:
        return " bytes";
    case CONF_DURATION_MS:
        return "ms";
    case CONF_DURATION_S:
        return "s";
    default:
        return "";
    }
}

static int convert_uint(const struct conf_key *k, const char *text, uint64_t *v, char *msg,
                        size_t cap)
{
    uint64_t ms;

    switch (k->type) {
    case CONF_UINT:
        if (conf_parse_uint(text, v) == 0)
            return 0;
        snprintf(msg, cap, "expected a non-negative integer, got '%.40s'", text);
        return -1;
    case CONF_SIZE:
        if (conf_parse_size(text, v) == 0)
            return 0;
        snprintf(msg, cap, "expected a size such as 4096, 64KiB or 5GiB, got '%.40s'", text);
        return -1;
    case CONF_DURATION_MS:
    case CONF_DURATION_S:
        if (conf_parse_duration_ms(text, &ms) != 0) {
            snprintf(msg, cap, "expected a duration such as 500ms, 30s, 10m or 7d, got '%.40s'",
                     text);
            return -1;
        }
        if (k->type == CONF_DURATION_S && ms % 1000 != 0) {
            snprintf(msg, cap, "'%.40s' is not a whole number of seconds", text);
            return -1;
        }
        *v = k->type == CONF_DURATION_S ? ms / 1000 : ms;
        return 0;
    default:
        table_bug(k, "not an unsigned type");
    }
}

/* Converts `text` for a bool or integer key, checks its range and stores it in `field`.
 * 0, or -1 with a reason in msg. */
static int set_scalar(const struct conf_key *k, char *field, const char *text, char *msg,
                      size_t cap)
{
    bool b;
    int64_t i;
    uint64_t u;

    switch (k->type) {
    case CONF_BOOL:
        if (k->width != sizeof(bool))
            table_bug(k, "bool field must be a bool");
        if (conf_parse_bool(text, &b) != 0) {
            snprintf(msg, cap, "expected true or false, got '%.40s'", text);
            return -1;
        }
        memcpy(field, &b, sizeof(b));
        return 0;
    case CONF_INT:
        if (conf_parse_int(text, &i) != 0) {
            snprintf(msg, cap, "expected an integer, got '%.40s'", text);
            return -1;
        }
        if (i > (int64_t)(width_max(k) >> 1) || i < -(int64_t)(width_max(k) >> 1) - 1) {
            snprintf(msg, cap, "%" PRId64 " is out of range", i);
            return -1;
        }
        if (has_limits(k) && (i < k->min || i > k->max)) {
            snprintf(msg, cap, "%" PRId64 " is out of range (%lld to %lld)", i, k->min, k->max);
            return -1;
        }
        store_int(field, k, i);
        return 0;
    case CONF_UINT:
    case CONF_SIZE:
    case CONF_DURATION_MS:
    case CONF_DURATION_S:
        if (convert_uint(k, text, &u, msg, cap) != 0)
            return -1;
        if (!uint_in_range(k, u)) {
            if (has_limits(k))
                snprintf(msg, cap, "%" PRIu64 "%s is out of range (%lld%s to %lld%s)", u,
                         unit_name(k), k->min, unit_name(k), k->max, unit_name(k));
            else
                snprintf(msg, cap, "%" PRIu64 "%s is too large", u, unit_name(k));
            return -1;
        }
        store_uint(field, k, u);
        return 0;
    default:
        table_bug(k, "not a scalar type");
    }
}

/* ---- Defaults and free ---------------------------------------------------------------- */

void conf_defaults(const struct conf_key *table, void *base_)
{
    char *base = base_;
    char msg[160];

    for (const struct conf_key *k = table; k->type != CONF_TYPE_END; k++) {
        char *field = base + k->offset;
        const char *dflt = k->dflt;

        switch (k->type) {
        case CONF_STRING:
            set_ptr(field, k->dflt != NULL ? conf_xstrdup(k->dflt) : NULL);
            break;
        case CONF_BOOL:
        case CONF_INT:
        case CONF_UINT:
        case CONF_SIZE:
        case CONF_DURATION_MS:
        case CONF_DURATION_S:
            if (dflt == NULL)
                dflt = k->type == CONF_BOOL ? "false" : "0";
            if (set_scalar(k, field, dflt, msg, sizeof(msg)) != 0)
                table_bug(k, msg);
            break;
        case CONF_SECTION:
        case CONF_INCLUDE:
            conf_defaults(k->sub, field);
            break;
        case CONF_LIST:
        case CONF_STRING_LIST:
        case CONF_STRING_MAP:
        case CONF_SECTION_MAP:
            set_ptr(field, NULL);
            set_count(base, k, 0);
            break;
        case CONF_ANY_MAP:
            break;
        default:
            table_bug(k, "unknown type");
        }
    }
}

static void free_string_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static void free_string_map(struct conf_kv *kv, size_t n)
{
    for (size_t i = 0; kv != NULL && i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void free_list(const struct conf_key *k, char *items, size_t n)
{
    for (size_t i = 0; items != NULL && i < n; i++)
        conf_free(k->sub, items + i * k->elem_size);
    free(items);
}

/* The key field may also be one of `sub`'s: conf_free() then frees and clears it first. */
static void free_section_map(const struct conf_key *k, char *items, size_t n)
{
    for (size_t i = 0; items != NULL && i < n; i++) {
        char *elem = items + i * k->elem_size;
        conf_free(k->sub, elem);
        free(get_ptr(elem + k->key_offset));
        set_ptr(elem + k->key_offset, NULL);
    }
    free(items);
}

void conf_free(const struct conf_key *table, void *base_)
{
    char *base = base_;

    if (base == NULL)
        return;
    for (const struct conf_key *k = table; k->type != CONF_TYPE_END; k++) {
        char *field = base + k->offset;

        switch (k->type) {
        case CONF_STRING:
            free(get_ptr(field));
            set_ptr(field, NULL);
            break;
        case CONF_SECTION:
        case CONF_INCLUDE:
            conf_free(k->sub, field);
            break;
        case CONF_LIST:
            free_list(k, get_ptr(field), get_count(base, k));
            set_ptr(field, NULL);
            set_count(base, k, 0);
            break;
        case CONF_SECTION_MAP:
            free_section_map(k, get_ptr(field), get_count(base, k));
            set_ptr(field, NULL);
            set_count(base, k, 0);
            break;
        case CONF_STRING_LIST:
            free_string_list(get_ptr(field), get_count(base, k));
            set_ptr(field, NULL);
            set_count(base, k, 0);
            break;
        case CONF_STRING_MAP:
            free_string_map(get_ptr(field), get_count(base, k));
            set_ptr(field, NULL);
            set_count(base, k, 0);
            break;
        default:
            break;
        }
    }
}

/* ---- Applying a tree ------------------------------------------------------------------ */

/* Finds `name` among the keys of `table` and of the tables it includes; *off gets the offset
 * of the struct the found key's table describes, relative to `table`'s. */
static const struct conf_key *find_key(const struct conf_key *table, const char *name, size_t *off)
{
    for (const struct conf_key *k = table; k->type != CONF_TYPE_END; k++) {
        if (k->type == CONF_INCLUDE) {
            size_t sub_off;
            const struct conf_key *found = find_key(k->sub, name, &sub_off);
            if (found != NULL) {
                *off = k->offset + sub_off;
                return found;
            }
        } else if (strcmp(k->name, name) == 0) {
            *off = 0;
            return k;
        }
    }
    return NULL;
}

static const struct conf_node *map_find(const struct conf_node *map, const char *name)
{
    for (size_t i = 0; i + 1 < map->n_items; i += 2) {
        if (strcmp(map->items[i].value, name) == 0)
            return &map->items[i + 1];
    }
    return NULL;
}

static const char *kind_name(const struct conf_node *n)
{
    switch (n->kind) {
    case CONF_NODE_MAP:
        return "a mapping";
    case CONF_NODE_SEQ:
        return "a list";
    default:
        return n->is_null ? "nothing" : "a single value";
    }
}

static int apply_map(const struct conf_key *table, char *base, const struct conf_node *map,
                     const char *path, struct conf_error *err);

static int run_check(const struct conf_key *k, const char *base, int line, const char *path,
                     struct conf_error *err)
{
    char msg[128] = "";

    if (k->check == NULL || k->check(base, k, msg, sizeof(msg)) == 0)
        return 0;
    conf_error_set(err, line, "'%s': %s", path, msg[0] != '\0' ? msg : "invalid value");
    return -1;
}

static int apply_string_list(const struct conf_key *k, char *base, const struct conf_node *val,
                             const char *path, struct conf_error *err)
{
    char **items = conf_xcalloc(val->n_items, sizeof(*items));

    for (size_t i = 0; i < val->n_items; i++) {
        const struct conf_node *item = &val->items[i];
        if (item->kind != CONF_NODE_SCALAR || item->is_null) {
            conf_error_set(err, item->line, "'%s[%zu]' must be a single value, not %s", path, i,
                           kind_name(item));
            free_string_list(items, i);
            return -1;
        }
        items[i] = conf_xstrdup(item->value);
    }
    free_string_list(get_ptr(base + k->offset), get_count(base, k));
    set_ptr(base + k->offset, val->n_items > 0 ? items : NULL);
    if (val->n_items == 0)
        free(items);
    set_count(base, k, val->n_items);
    return 0;
}

/* qsort order for the duplicate check of a string map: by key, then by position. */
static int cmp_key_node(const void *a, const void *b)
{
    const struct conf_node *x = *(const struct conf_node *const *)a;
    const struct conf_node *y = *(const struct conf_node *const *)b;
    int c = strcmp(x->value, y->value);

    if (c != 0)
        return c;
    return x < y ? -1 : x > y;
}

/* A string map's keys come from the document, so unlike a table's they can be many: sort
 * them to find a duplicate in n log n. Reports the second occurrence. */
static int check_map_unique(const struct conf_node *map, const char *path, struct conf_error *err)
{
    size_t n = map->n_items / 2;
    const struct conf_node **keys = conf_xcalloc(n, sizeof(*keys));
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        keys[i] = &map->items[2 * i];
    qsort(keys, n, sizeof(*keys), cmp_key_node);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(keys[i - 1]->value, keys[i]->value) == 0) {
            conf_error_set(err, keys[i]->line,
                           "duplicate key '%.40s' in '%.60s' (first on line %d)", keys[i]->value,
                           path, keys[i - 1]->line);
            rc = -1;
            break;
        }
    }
    free(keys);
    return rc;
}

static int apply_string_map(const struct conf_key *k, char *base, const struct conf_node *val,
                            const char *path, struct conf_error *err)
{
    size_t n = val->n_items / 2;
    struct conf_kv *kv;

    for (size_t i = 0; i < n; i++) {
        const struct conf_node *item = &val->items[2 * i + 1];
        if (item->kind != CONF_NODE_SCALAR) {
            conf_error_set(err, item->line, "'%s.%.40s' must be a single value, not %s", path,
                           val->items[2 * i].value, kind_name(item));
            return -1;
        }
    }
    if (check_map_unique(val, path, err) != 0)
        return -1;
    kv = n > 0 ? conf_xcalloc(n, sizeof(*kv)) : NULL;
    for (size_t i = 0; i < n; i++) {
        const struct conf_node *item = &val->items[2 * i + 1];
        kv[i].key = conf_xstrdup(val->items[2 * i].value);
        /* "NAME:" with nothing after it is the empty string, as a shell would have it */
        kv[i].value = conf_xstrdup(item->is_null ? "" : item->value);
    }
    free_string_map(get_ptr(base + k->offset), get_count(base, k));
    set_ptr(base + k->offset, kv);
    set_count(base, k, n);
    return 0;
}

static int apply_list(const struct conf_key *k, char *base, const struct conf_node *val,
                      const char *path, struct conf_error *err)
{
    char *items;

    if (k->elem_size == 0 || k->sub == NULL)
        table_bug(k, "list needs sub and elem_size");
    items = conf_xcalloc(val->n_items, k->elem_size);
    for (size_t i = 0; i < val->n_items; i++) {
        const struct conf_node *item = &val->items[i];
        char *elem = items + i * k->elem_size;
        char elem_path[PATH_CAP];

        snprintf(elem_path, sizeof(elem_path), "%s[%zu]", path, i);
        if (item->kind != CONF_NODE_MAP) {
            conf_error_set(err, item->line, "'%s' must be a mapping, not %s", elem_path,
                           kind_name(item));
            free_list(k, items, val->n_items);
            return -1;
        }
        conf_defaults(k->sub, elem);
        if (apply_map(k->sub, elem, item, elem_path, err) != 0) {
            free_list(k, items, val->n_items); /* the rest are zeroed: nothing to free */
            return -1;
        }
    }
    free_list(k, get_ptr(base + k->offset), get_count(base, k));
    set_ptr(base + k->offset, val->n_items > 0 ? items : NULL);
    if (val->n_items == 0)
        free(items);
    set_count(base, k, val->n_items);
    return 0;
}

/* The mappings of a section map: `val` itself, or the items of a list of mappings. Checks
 * each is a mapping without a repeated key and counts their entries. */
static int section_map_maps(const struct conf_node *val, const char *path,
                            const struct conf_node **maps, size_t *n_maps, size_t *n_entries,
                            struct conf_error *err)
{
    bool is_seq = val->kind == CONF_NODE_SEQ;

    *maps = is_seq ? val->items : val;
    *n_maps = is_seq ? val->n_items : 1;
    *n_entries = 0;
    for (size_t m = 0; m < *n_maps; m++) {
        const struct conf_node *map = &(*maps)[m];
        char map_path[PATH_CAP];

        if (is_seq)
            snprintf(map_path, sizeof(map_path), "%s[%zu]", path, m);
        else
            snprintf(map_path, sizeof(map_path), "%s", path);
        if (map->kind != CONF_NODE_MAP) {
            conf_error_set(err, map->line, "'%s' must be a mapping, not %s", map_path,
                           kind_name(map));
            return -1;
        }
        if (check_map_unique(map, map_path, err) != 0)
            return -1;
        *n_entries += map->n_items / 2;
    }
    return 0;
}

static int apply_section_map(const struct conf_key *k, char *base, const struct conf_node *val,
                             const char *path, struct conf_error *err)
{
    const struct conf_node *maps;
    size_t n_maps, n, done = 0;
    char *items;

    if (k->elem_size == 0 || k->sub == NULL)
        table_bug(k, "section map needs sub and elem_size");
    if (section_map_maps(val, path, &maps, &n_maps, &n, err) != 0)
        return -1;
    items = conf_xcalloc(n > 0 ? n : 1, k->elem_size);
    for (size_t m = 0; m < n_maps; m++) {
        const struct conf_node *map = &maps[m];

        for (size_t i = 0; i + 1 < map->n_items; i += 2, done++) {
            const struct conf_node *key = &map->items[i], *item = &map->items[i + 1];
            char *elem = items + done * k->elem_size;
            char elem_path[PATH_CAP];

            if (val->kind == CONF_NODE_SEQ)
                snprintf(elem_path, sizeof(elem_path), "%s[%zu].%.40s", path, m, key->value);
            else
                snprintf(elem_path, sizeof(elem_path), "%s.%.40s", path, key->value);
            if (item->kind != CONF_NODE_MAP) {
                conf_error_set(err, item->line, "'%s' must be a mapping, not %s", elem_path,
                               kind_name(item));
                goto fail;
            }
            conf_defaults(k->sub, elem);
            if (apply_map(k->sub, elem, item, elem_path, err) != 0)
                goto fail;
            /* the key wins over a field it shares with `sub` (an FDL's cluster key over the
             * service's cluster_id, as oscar-cli has it) */
            free(get_ptr(elem + k->key_offset));
            set_ptr(elem + k->key_offset, conf_xstrdup(key->value));
        }
    }
    free_section_map(k, get_ptr(base + k->offset), get_count(base, k));
    set_ptr(base + k->offset, n > 0 ? items : NULL);
    if (n == 0)
        free(items);
    set_count(base, k, n);
    return 0;

fail:
    free_section_map(k, items, n); /* the rest are zeroed: nothing to free */
    return -1;
}

/* Sets key `k` of the struct at `base` from `val`. */
static int apply_value(const struct conf_key *k, char *base, const struct conf_node *val,
                       const char *path, struct conf_error *err)
{
    char *field = base + k->offset;
    int line = val->line;
    char msg[128];

    switch (k->type) {
    case CONF_STRING:
        if (val->kind != CONF_NODE_SCALAR)
            goto not_scalar;
        if ((k->flags & CONF_NONEMPTY) && (val->is_null || val->value[0] == '\0')) {
            conf_error_set(err, val->line, "'%s' must not be empty", path);
            return -1;
        }
        free(get_ptr(field));
        set_ptr(field, val->is_null ? NULL : conf_xstrdup(val->value));
        break;
    case CONF_BOOL:
    case CONF_INT:
    case CONF_UINT:
    case CONF_SIZE:
    case CONF_DURATION_MS:
    case CONF_DURATION_S:
        if (val->kind != CONF_NODE_SCALAR)
            goto not_scalar;
        if (val->is_null) {
            conf_error_set(err, val->line, "'%s' needs a value", path);
            return -1;
        }
        if (set_scalar(k, field, val->value, msg, sizeof(msg)) != 0) {
            conf_error_set(err, val->line, "'%s': %s", path, msg);
            return -1;
        }
        break;
    case CONF_SECTION:
        if (val->kind == CONF_NODE_SCALAR && val->is_null)
            break; /* "limits:" with nothing under it */
        if (val->kind != CONF_NODE_MAP) {
            conf_error_set(err, val->line, "'%s' must be a mapping, not %s", path, kind_name(val));
            return -1;
        }
        if (apply_map(k->sub, field, val, path, err) != 0)
            return -1;
        break;
    case CONF_LIST:
    case CONF_STRING_LIST:
        if (val->kind == CONF_NODE_SCALAR && val->is_null) {
            static const struct conf_node empty = {.kind = CONF_NODE_SEQ};
            val = &empty;
        }
        if (val->kind != CONF_NODE_SEQ) {
            conf_error_set(err, val->line, "'%s' must be a list, not %s", path, kind_name(val));
            return -1;
        }
        if ((k->type == CONF_LIST ? apply_list : apply_string_list)(k, base, val, path, err) != 0)
            return -1;
        break;
    case CONF_STRING_MAP:
        if (val->kind == CONF_NODE_SCALAR && val->is_null) {
            static const struct conf_node empty = {.kind = CONF_NODE_MAP};
            val = &empty;
        }
        if (val->kind != CONF_NODE_MAP) {
            conf_error_set(err, val->line, "'%s' must be a mapping, not %s", path, kind_name(val));
            return -1;
        }
        if (apply_string_map(k, base, val, path, err) != 0)
            return -1;
        break;
    case CONF_SECTION_MAP:
        if (val->kind == CONF_NODE_SCALAR && val->is_null) {
            static const struct conf_node empty = {.kind = CONF_NODE_MAP};
            val = &empty;
        }
        if (val->kind == CONF_NODE_SCALAR) {
            conf_error_set(err, val->line, "'%s' must be a mapping or a list of mappings, not %s",
                           path, kind_name(val));
            return -1;
        }
        if (apply_section_map(k, base, val, path, err) != 0)
            return -1;
        break;
    case CONF_ANY_MAP:
        if (val->kind != CONF_NODE_MAP && !(val->kind == CONF_NODE_SCALAR && val->is_null)) {
            conf_error_set(err, val->line, "'%s' must be a mapping, not %s", path, kind_name(val));
            return -1;
        }
        break;
    default:
        table_bug(k, "unknown type");
    }
    return run_check(k, base, line, path, err);

not_scalar:
    conf_error_set(err, val->line, "'%s' must be a single value, not %s", path, kind_name(val));
    return -1;
}

/* Reports the first CONF_REQUIRED key of `table` (and its includes) missing from `map`. */
static int check_required(const struct conf_key *table, const struct conf_node *map,
                          const char *path, struct conf_error *err)
{
    for (const struct conf_key *k = table; k->type != CONF_TYPE_END; k++) {
        if (k->type == CONF_INCLUDE) {
            if (check_required(k->sub, map, path, err) != 0)
                return -1;
        } else if ((k->flags & CONF_REQUIRED) && map_find(map, k->name) == NULL) {
            if (path[0] == '\0')
                conf_error_set(err, map->line, "missing required key '%s'", k->name);
            else
                conf_error_set(err, map->line, "missing required key '%s' in '%s'", k->name, path);
            return -1;
        }
    }
    return 0;
}

static int apply_map(const struct conf_key *table, char *base, const struct conf_node *map,
                     const char *path, struct conf_error *err)
{
    for (size_t i = 0; i + 1 < map->n_items; i += 2) {
        const struct conf_node *key = &map->items[i];
        const struct conf_key *k;
        char key_path[PATH_CAP];
        size_t off;

        /* Every key before this one was known and distinct, so this loop stays as short as
         * the table whatever the input. */
        for (size_t j = 0; j < i; j += 2) {
            if (strcmp(map->items[j].value, key->value) == 0) {
                conf_error_set(err, key->line, "duplicate key '%.40s'%s%.60s%s (first on line %d)",
                               key->value, path[0] != '\0' ? " in '" : "", path,
                               path[0] != '\0' ? "'" : "", map->items[j].line);
                return -1;
            }
        }
        k = find_key(table, key->value, &off);
        if (k == NULL) {
            conf_error_set(err, key->line, "unknown key '%.40s'%s%.60s%s", key->value,
                           path[0] != '\0' ? " in '" : "", path, path[0] != '\0' ? "'" : "");
            return -1;
        }
        join_path(key_path, path, k->name);
        if (apply_value(k, base + off, &map->items[i + 1], key_path, err) != 0)
            return -1;
    }
    return check_required(table, map, path, err);
}

int conf_apply(const struct conf_key *table, void *base, const struct conf_node *root,
               struct conf_error *err)
{
    err->line = 0;
    err->msg[0] = '\0';
    if (root->kind != CONF_NODE_MAP) {
        conf_error_set(err, root->line, "the configuration must be a mapping of keys, not %s",
                       kind_name(root));
        return -1;
    }
    return apply_map(table, base, root, "", err);
}

static int load_tree(const struct conf_key *table, void *base, struct conf_node *root,
                     struct conf_error *err)
{
    int rc;

    conf_free(table, base);
    conf_defaults(table, base);
    if (root == NULL)
        return -1;
    rc = conf_apply(table, base, root, err);
    conf_node_free(root);
    return rc;
}

int conf_load_string(const struct conf_key *table, void *base, const char *data, size_t len,
                     struct conf_error *err)
{
    return load_tree(table, base, conf_parse(data, len, err), err);
}

int conf_load_file(const struct conf_key *table, void *base, const char *path,
                   struct conf_error *err)
{
    return load_tree(table, base, conf_parse_file(path, err), err);
}

int conf_set(const struct conf_key *table, void *base_, const char *path, const char *value,
             struct conf_error *err)
{
    char *base = base_;
    const char *seg = path;
    struct conf_node val = {.kind = CONF_NODE_SCALAR, .line = 0};
    int rc;

    err->line = 0;
    err->msg[0] = '\0';
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot != NULL ? (size_t)(dot - seg) : strlen(seg);
        char *name = conf_xstrndup(seg, len);
        const struct conf_key *k;
        size_t off;

        k = find_key(table, name, &off);
        free(name);
        if (k == NULL || (dot != NULL && k->type != CONF_SECTION)) {
            conf_error_set(err, 0, "unknown key '%.60s'", path);
            return -1;
        }
        base += off;
        if (dot != NULL) {
            base += k->offset;
            table = k->sub;
            seg = dot + 1;
            continue;
        }
        if (k->type == CONF_SECTION || k->type == CONF_LIST || k->type == CONF_STRING_LIST ||
            k->type == CONF_STRING_MAP || k->type == CONF_SECTION_MAP || k->type == CONF_ANY_MAP) {
            conf_error_set(err, 0, "'%.60s' cannot be set from a single value", path);
            return -1;
        }
        val.value = conf_xstrdup(value);
        rc = apply_value(k, base, &val, path, err);
        free(val.value);
        return rc;
    }
}
