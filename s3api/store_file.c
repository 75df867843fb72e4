/* Data files of the fs store: ids and names, creating temps, finding a committed file whether
 * or not it has been moved out of tmp/ yet, unlinking, copying ranges, and the pins that keep
 * a reader's files alive across a concurrent overwrite or delete. Pool threads only (and
 * open/close), but for s3_fs_pins_add() and s3_fs_pins_drop(), which touch only memory. The commit
 * protocol that decides when these run is in store_fs.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/xmalloc.h"
#include "s3api/store_fs_internal.h"

void s3_fs_file_name(char out[S3_FS_NAME_LEN], uint64_t id, bool in_tmp)
{
    if (in_tmp)
        snprintf(out, S3_FS_NAME_LEN, "%016" PRIx64, id);
    else
        snprintf(out, S3_FS_NAME_LEN, "%02x/%016" PRIx64, (unsigned)(id & 0xff), id);
}

uint64_t s3_fs_new_id(struct s3_store *st)
{
    return atomic_fetch_add(&st->next_id, 1);
}

int s3_fs_tmp_create(struct s3_store *st, uint64_t *id)
{
    char name[S3_FS_NAME_LEN];
    *id = s3_fs_new_id(st);
    s3_fs_file_name(name, *id, true);
    return openat(st->tmp_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
}

/* A committed file is in tmp/ until the mover renames it into objects/ (an atomic rename), so
 * looking in objects/, then tmp/, then objects/ again finds it whenever it exists. */
int s3_fs_file_open(struct s3_store *st, uint64_t id)
{
    char obj[S3_FS_NAME_LEN], tmp[S3_FS_NAME_LEN];
    s3_fs_file_name(obj, id, false);
    s3_fs_file_name(tmp, id, true);
    int fd = openat(st->objects_fd, obj, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        fd = openat(st->tmp_fd, tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        fd = openat(st->objects_fd, obj, O_RDONLY | O_CLOEXEC);
    return fd;
}

int s3_fs_file_unlink(struct s3_store *st, uint64_t id)
{
    char obj[S3_FS_NAME_LEN], tmp[S3_FS_NAME_LEN];
    s3_fs_file_name(obj, id, false);
    s3_fs_file_name(tmp, id, true);
    if (unlinkat(st->objects_fd, obj, 0) == 0)
        return 0;
    if (errno == ENOENT && unlinkat(st->tmp_fd, tmp, 0) == 0)
        return 0;
    if (errno == ENOENT && unlinkat(st->objects_fd, obj, 0) == 0)
        return 0;
    return errno == ENOENT ? 0 : -1;
}

int s3_fs_file_publish(struct s3_store *st, uint64_t id)
{
    char obj[S3_FS_NAME_LEN], tmp[S3_FS_NAME_LEN];
    s3_fs_file_name(obj, id, false);
    s3_fs_file_name(tmp, id, true);
    if (renameat(st->tmp_fd, tmp, st->objects_fd, obj) != 0)
        return errno == ENOENT ? 0 : -1;
    return 0;
}

int s3_fs_fsync_obj_dir(struct s3_store *st, uint64_t id)
{
    char dir[4];
    snprintf(dir, sizeof(dir), "%02x", (unsigned)(id & 0xff));
    int fd = openat(st->objects_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int s3_fs_tmp_clear(struct s3_store *st)
{
    int fd = openat(st->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(st->tmp_fd, e->d_name, 0) != 0 && errno != ENOENT)
            rc = -1;
    }
    closedir(d);
    if (rc == 0)
        rc = fsync(st->tmp_fd);
    return rc;
}

int s3_fs_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int copy_by_hand(int in, uint64_t off, int out, uint64_t len)
{
    size_t cap = 256 * 1024;
    char *buf = xmalloc(cap);
    int rc = 0;
    while (len > 0 && rc == 0) {
        size_t want = len < cap ? (size_t)len : cap;
        ssize_t r = pread(in, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* the file is shorter than its record says */
            rc = -1;
            break;
        }
        rc = s3_fs_write_all(out, buf, (size_t)r);
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    free(buf);
    return rc;
}

int s3_fs_copy_range(int in, uint64_t off, int out, uint64_t len)
{
    loff_t ioff = (loff_t)off;
    while (len > 0) {
        size_t want = len < (1u << 30) ? (size_t)len : (1u << 30);
        ssize_t n = copy_file_range(in, &ioff, out, NULL, want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP ||
                      errno == EPERM))
            return copy_by_hand(in, (uint64_t)ioff, out, len);
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        len -= (uint64_t)n;
    }
    return 0;
}

/* ---- pins ---- */

struct s3_fs_pin {
    struct s3_fs_pin *next;
    uint64_t id;
    unsigned count;     /* readers holding the file */
    bool unlink_wanted; /* its record is gone: unlink at the last unpin */
};

void s3_fs_pins_init(struct s3_fs_pins *p)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
}

void s3_fs_pins_cleanup(struct s3_fs_pins *p)
{
    for (size_t i = 0; i < 256; i++) {
        struct s3_fs_pin *e = p->slots[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        p->slots[i] = NULL;
    }
    pthread_mutex_destroy(&p->mu);
}

static struct s3_fs_pin **pin_find(struct s3_fs_pins *p, uint64_t id)
{
    struct s3_fs_pin **e = &p->slots[(id ^ (id >> 8)) & 0xff];
    while (*e != NULL && (*e)->id != id)
        e = &(*e)->next;
    return e;
}

void s3_fs_pins_add(struct s3_store *st, const struct s3_fs_loc *loc)
{
    if (loc->kind != S3_FS_LOC_SEGS)
        return;
    pthread_mutex_lock(&st->pins.mu);
    for (size_t i = 0; i < loc->n_segs; i++) {
        struct s3_fs_pin **e = pin_find(&st->pins, loc->segs[i].file_id);
        if (*e == NULL) {
            *e = xcalloc(1, sizeof(**e));
            (*e)->id = loc->segs[i].file_id;
        }
        (*e)->count++;
    }
    pthread_mutex_unlock(&st->pins.mu);
}

void s3_fs_pins_drop(struct s3_store *st, const struct s3_fs_loc *loc, struct s3_fs_ids *doomed)
{
    if (loc->kind != S3_FS_LOC_SEGS)
        return;
    pthread_mutex_lock(&st->pins.mu);
    for (size_t i = 0; i < loc->n_segs; i++) {
        struct s3_fs_pin **e = pin_find(&st->pins, loc->segs[i].file_id), *dead;
        ASSERT(*e != NULL && (*e)->count > 0);
        if (--(*e)->count > 0)
            continue;
        dead = *e;
        *e = dead->next;
        if (dead->unlink_wanted)
            s3_fs_ids_push(doomed, dead->id);
        free(dead);
    }
    pthread_mutex_unlock(&st->pins.mu);
}

void s3_fs_pins_release(struct s3_store *st, const struct s3_fs_loc *loc)
{
    struct s3_fs_ids doomed = {0};
    s3_fs_pins_drop(st, loc, &doomed);
    /* Its trash entry stays until the next open clears it: harmless, the id is never reused. */
    for (size_t i = 0; i < doomed.n; i++)
        s3_fs_file_unlink(st, doomed.v[i]);
    s3_fs_ids_cleanup(&doomed);
}

bool s3_fs_unlink_when_unpinned(struct s3_store *st, uint64_t id)
{
    pthread_mutex_lock(&st->pins.mu);
    struct s3_fs_pin **e = pin_find(&st->pins, id);
    bool pinned = *e != NULL;
    if (pinned)
        (*e)->unlink_wanted = true;
    pthread_mutex_unlock(&st->pins.mu);
    return !pinned && s3_fs_file_unlink(st, id) == 0;
}
