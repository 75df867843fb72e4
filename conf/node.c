/* conf: YAML text to a tree of conf_node with line numbers, through libyaml's event API. The
 * tree is schema-free; apply.c gives it meaning. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf/conf.h"
#include "conf/internal.h"

struct loader {
    yaml_parser_t parser;
    struct conf_error *err;
};

static int mark_line(yaml_mark_t mark)
{
    return mark.line < 0x7fffffff ? (int)mark.line + 1 : 0x7fffffff;
}

static void syntax_error(struct loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem != NULL ? p->problem : "malformed YAML";

    if (p->error == YAML_MEMORY_ERROR)
        conf_oom();
    if (p->context != NULL)
        conf_error_set(ld->err, mark_line(p->problem_mark),
                       "YAML syntax error: %s (%s that starts on line %d)", problem, p->context,
                       mark_line(p->context_mark));
    else if (strcmp(problem, "block sequence entries are not allowed in this context") == 0)
        /* the usual cause: `error_log: -` meaning the string "-" */
        conf_error_set(ld->err, mark_line(p->problem_mark),
                       "YAML syntax error: %s (a value that is just - must be quoted: \"-\")",
                       problem);
    else
        conf_error_set(ld->err, mark_line(p->problem_mark), "YAML syntax error: %s", problem);
}

static int next_event(struct loader *ld, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev)) {
        syntax_error(ld);
        return -1;
    }
    return 0;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    const char *v = (const char *)ev->data.scalar.value;

    if (!ev->data.scalar.plain_implicit || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strcmp(v, nulls[i]) == 0)
            return true;
    }
    return false;
}

static void node_append(struct conf_node *parent, const struct conf_node *child)
{
    size_t n = parent->n_items;

    /* grow at powers of two */
    if ((n & (n - 1)) == 0)
        parent->items = conf_xreallocarray(parent->items, n == 0 ? 1 : n * 2, sizeof(*child));
    parent->items[n] = *child;
    parent->n_items = n + 1;
}

static void node_cleanup(struct conf_node *node)
{
    for (size_t i = 0; i < node->n_items; i++)
        node_cleanup(&node->items[i]);
    free(node->items);
    free(node->value);
}

/* Builds `out` from `ev`, the event that starts a node, reading the events of its children.
 * `ev` stays the caller's to delete. */
static int load_node(struct loader *ld, const yaml_event_t *ev, struct conf_node *out, int depth)
{
    yaml_event_type_t end;
    int line = mark_line(ev->start_mark);

    memset(out, 0, sizeof(*out));
    out->line = line;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL) {
            conf_error_set(ld->err, line, "NUL character in a value");
            return -1;
        }
        out->kind = CONF_NODE_SCALAR;
        out->is_null = is_null_scalar(ev);
        out->value = conf_xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        return 0;
    case YAML_ALIAS_EVENT:
        conf_error_set(ld->err, line, "YAML aliases are not supported");
        return -1;
    case YAML_SEQUENCE_START_EVENT:
        out->kind = CONF_NODE_SEQ;
        end = YAML_SEQUENCE_END_EVENT;
        break;
    case YAML_MAPPING_START_EVENT:
        out->kind = CONF_NODE_MAP;
        end = YAML_MAPPING_END_EVENT;
        break;
    default:
        conf_error_set(ld->err, line, "unexpected YAML event");
        return -1;
    }
    if (depth >= CONF_MAX_DEPTH) {
        conf_error_set(ld->err, line, "nesting deeper than %d levels", CONF_MAX_DEPTH);
        return -1;
    }
    for (;;) {
        yaml_event_t child_ev;
        struct conf_node child;
        int rc;

        if (next_event(ld, &child_ev) != 0)
            return -1;
        if (child_ev.type == end) {
            yaml_event_delete(&child_ev);
            return 0;
        }
        rc = load_node(ld, &child_ev, &child, depth + 1);
        yaml_event_delete(&child_ev);
        if (rc == 0 && out->kind == CONF_NODE_MAP && out->n_items % 2 == 0 &&
            child.kind != CONF_NODE_SCALAR) {
            conf_error_set(ld->err, child.line, "mapping keys must be scalars");
            rc = -1;
        }
        if (rc != 0) {
            node_cleanup(&child);
            return -1;
        }
        node_append(out, &child);
    }
}

/* Reads the stream: at most one document, whose root becomes `root`. */
static int load_stream(struct loader *ld, struct conf_node *root)
{
    yaml_event_t ev;
    bool have_doc = false;
    int rc = -1;

    memset(root, 0, sizeof(*root));
    root->kind = CONF_NODE_MAP;
    root->line = 1;
    for (;;) {
        if (next_event(ld, &ev) != 0)
            return -1;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (have_doc) {
                conf_error_set(ld->err, mark_line(ev.start_mark),
                               "only one YAML document is allowed");
                goto out;
            }
            have_doc = true;
            break;
        case YAML_STREAM_END_EVENT:
            rc = 0;
            goto out;
        default:
            /* the document's root node */
            node_cleanup(root);
            if (load_node(ld, &ev, root, 0) != 0)
                goto out;
            break;
        }
        yaml_event_delete(&ev);
    }
out:
    yaml_event_delete(&ev);
    return rc;
}

struct conf_node *conf_parse(const char *data, size_t len, struct conf_error *err)
{
    struct loader ld = {.err = err};
    struct conf_node *root = conf_xcalloc(1, sizeof(*root));

    err->line = 0;
    err->msg[0] = '\0';
    if (len > CONF_MAX_INPUT_BYTES) {
        conf_error_set(err, 0, "configuration larger than %u bytes", CONF_MAX_INPUT_BYTES);
        goto fail;
    }
    if (!yaml_parser_initialize(&ld.parser))
        conf_oom();
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)(data != NULL ? data : ""),
                                 len);
    if (load_stream(&ld, root) != 0) {
        yaml_parser_delete(&ld.parser);
        goto fail;
    }
    yaml_parser_delete(&ld.parser);
    /* a document that is only null ("---", "~") configures nothing, like an empty one */
    if (root->kind == CONF_NODE_SCALAR && root->is_null) {
        node_cleanup(root);
        memset(root, 0, sizeof(*root));
        root->kind = CONF_NODE_MAP;
        root->line = 1;
    }
    return root;

fail:
    conf_node_free(root);
    return NULL;
}

struct conf_node *conf_parse_file(const char *path, struct conf_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = CONF_MAX_INPUT_BYTES + 1;
    struct conf_node *root = NULL;

    err->line = 0;
    if (f == NULL) {
        conf_error_set(err, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    buf = conf_xcalloc(1, cap);
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0 || len == cap)
            break;
    }
    if (ferror(f))
        conf_error_set(err, 0, "cannot read: %s", strerror(errno));
    else if (len == cap)
        conf_error_set(err, 0, "configuration larger than %u bytes", CONF_MAX_INPUT_BYTES);
    else
        root = conf_parse(buf, len, err);
    free(buf);
    fclose(f);
    return root;
}

void conf_node_free(struct conf_node *node)
{
    if (node == NULL)
        return;
    node_cleanup(node);
    free(node);
}

const struct conf_node *conf_node_get(const struct conf_node *map, const char *name)
{
    if (map == NULL || map->kind != CONF_NODE_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->n_items; i += 2) {
        if (strcmp(map->items[i].value, name) == 0)
            return &map->items[i + 1];
    }
    return NULL;
}
