/* Lists the storage tree for indexer/listing.py (loaded with ctypes; `make` builds it, and
 * without it the same listing runs in Python): one folder (ocindex_list_folder), or the whole
 * tree, folder after folder, from a stack of folders shared by the threads that walk it
 * (ocindex_walk_*), so that a walk costs no Python per folder.
 *
 * A reconcile of a million files is a million lstat calls. In Python each also costs a
 * stat_result of twenty fields, a str per name and three list appends, twice the kernel's own
 * time on two cores; here a name costs the call alone, and the rows land in buffers that
 * become Arrow columns without a Python object per file.
 *
 * The rules are listing.py's PythonLister's, which the tests hold this to row for row: names
 * starting with "." or ending in ".tmp" are passed over unlisted; a regular file is a row
 * (with links, a symlink too: its own stamp, never followed); a folder goes to `dirs` for the
 * caller to judge and walk; anything else (fifo, socket, device) is passed over. A file that
 * vanishes between the listing and its lstat is passed over: the next scan sees it again.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtime_ns.h"

/* Results: rows appended (>= 0), or one of these, with nothing appended. */
#define UNLISTABLE -1 /* the folder vanished or cannot be opened or read */
#define FULL -2       /* the rows' buffers are too small: empty or grow them and call again */
#define NOT_ASCII -3  /* a name is not ASCII: the caller lists this folder itself, in Python,
                         which escapes a name that is not UTF-8 as stored paths need */
#define FULL_DIRS -5  /* the subfolders' names do not fit `dirs`, whose dirs_len then says
                         how big it must be: grow it alone and call again (a folder of 3,902
                         subfolders once doubled every buffer six times, 21 MB zeroed for
                         128 KB of names) */

typedef struct {
    char *paths;      /* stored paths (prefix + name), back to back */
    int64_t paths_cap;
    int64_t paths_len;
    int32_t *offsets; /* Arrow string offsets: row i is paths[offsets[i]:offsets[i + 1]] */
    int64_t *mtimes;
    int64_t *sizes;
    int64_t rows_cap; /* offsets holds rows_cap + 1 */
    int64_t rows;
    char *dirs;       /* the subfolders' names, each ended by a NUL; emptied each call */
    int64_t dirs_cap;
    int64_t dirs_len;
} listing;

/* The layout of `listing`, the walk's calls and the rules above, as listing.py expects them: a
 * library built from another version of this file is not used (the walk runs in Python). */
#define ABI 4

int ocindex_list_folder_abi(void) { return ABI; }

/* A folder's entries, read with getdents64 into a buffer on the caller's stack: readdir's
 * fdopendir costs an fstat, an fcntl and a 32 KB allocation a folder (a million files in
 * 250,000 folders: 1.78 s on two threads this way, 1.94 s with readdir). */
typedef struct {
    int fd;
    int64_t len, at;
    uint64_t buf[4096]; /* 32 KB, aligned for the entries' 64-bit fields */
} entries;

typedef struct {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
} entry64;

/* The next entry; NULL at the end (*failed = 0) or on an error (*failed = 1). */
static const entry64 *next_entry(entries *e, int *failed) {
    if (e->at >= e->len) {
        ssize_t n = getdents64(e->fd, e->buf, sizeof e->buf);
        *failed = n < 0;
        if (n <= 0)
            return NULL;
        e->len = n;
        e->at = 0;
    }
    const entry64 *entry = (const entry64 *)((const char *)e->buf + e->at);
    e->at += entry->d_reclen;
    return entry;
}

#define FOLDER_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)

/* ocindex_list_folder of a folder already opened (fd < 0: it could not be; closed here). */
static int list_opened(int fd, const char *prefix, int64_t prefix_len, int links, int stamps,
                       listing *out) {
    entries dir = {.fd = fd};
    if (dir.fd < 0)
        return UNLISTABLE;
    /* Appended past the lengths, which move only when the whole folder fits. */
    int64_t paths_len = out->paths_len, rows = out->rows, dirs_len = 0;
    int result = 0, failed = 0;
    struct stat st;
    for (;;) {
        const entry64 *entry = next_entry(&dir, &failed);
        if (entry == NULL) {
            if (failed)
                result = UNLISTABLE;
            break;
        }
        const char *name = entry->d_name;
        size_t n = strlen(name);
        if (name[0] == '.' || (n >= 4 && memcmp(name + n - 4, ".tmp", 4) == 0))
            continue;
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)name[i] >= 0x80) {
                result = NOT_ASCII;
                goto done;
            }
        }
        unsigned char type = entry->d_type;
        int is_dir = type == DT_DIR;
        if (!is_dir) {
            /* The listing's type spares an lstat where it cannot be a row, and where no stamp
             * is wanted (a first catch-up reads every file, its stamp with it). */
            if (type != DT_REG && type != DT_LNK && type != DT_UNKNOWN)
                continue;
            if (stamps || type == DT_UNKNOWN) {
                if (fstatat(dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                    continue;
                if (S_ISDIR(st.st_mode))
                    is_dir = 1;
                else if (!S_ISREG(st.st_mode) && !(links && S_ISLNK(st.st_mode)))
                    continue;
            } else if (type == DT_LNK && !links) {
                continue;
            }
        }
        if (is_dir) {
            if (dirs_len + (int64_t)n + 1 > out->dirs_cap) {
                /* What every name left would need: one more call then fits them. */
                int64_t needed = dirs_len + (int64_t)n + 1;
                for (const entry64 *left; (left = next_entry(&dir, &failed)) != NULL;)
                    needed += (int64_t)strlen(left->d_name) + 1;
                out->dirs_len = needed;
                result = FULL_DIRS;
                goto done;
            }
            memcpy(out->dirs + dirs_len, name, n + 1);
            dirs_len += (int64_t)n + 1;
            continue;
        }
        int64_t end = paths_len + prefix_len + (int64_t)n;
        if (rows >= out->rows_cap || end > out->paths_cap) {
            result = FULL;
            goto done;
        }
        memcpy(out->paths + paths_len, prefix, (size_t)prefix_len);
        memcpy(out->paths + paths_len + prefix_len, name, n);
        paths_len = end;
        out->mtimes[rows] = stamps ? mtime_ns(st.st_mtim) : 0;
        out->sizes[rows] = stamps ? (int64_t)st.st_size : 0;
        out->offsets[++rows] = (int32_t)paths_len;
    }
done:
    close(dir.fd);
    if (result < 0)
        return result;
    result = (int)(rows - out->rows);
    out->paths_len = paths_len;
    out->rows = rows;
    out->dirs_len = dirs_len;
    return result;
}

int ocindex_list_folder(const char *folder, const char *prefix, int64_t prefix_len, int links,
                        int stamps, listing *out) {
    return list_opened(open(folder, FOLDER_FLAGS), prefix, prefix_len, links, stamps, out);
}

/* The whole walk. Its stack holds the folders to list, each one allocation: its path on disk,
 * a NUL, its stored prefix, a NUL. A thread takes a folder, lists it without the lock, and
 * puts its subfolders back; the walk ends when the stack is empty and no folder is being
 * listed. A folder this file cannot list whole (a name that is not ASCII, or more rows than
 * the caller's buffers hold even empty) is handed to the caller, which lists it in Python,
 * pushes its subfolders (ocindex_walk_push) and says it is done (ocindex_walk_listed).
 *
 * Which subfolders are walked follows storage.py's is_ignored: names starting with "." or
 * ending in ".tmp" never reach here (see above), and the top level's "quarantine" is left out. */

#define WALK_DONE 0     /* no folder is left (or the walk was stopped) */
#define WALK_HANDED 1   /* *handed is a folder for the caller to list */
#define WALK_ROWS 2     /* the buffers hold the rows the caller wanted */
#define WALK_NO_MEMORY -4

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    char **stack;
    int64_t len;
    int64_t cap;
    int64_t listing; /* folders taken and not yet listed: their subfolders may still come */
    int stopped;
    int links;
    int stamps; /* 0: rows without their stamps (no lstat where the listing's type is known) */
} walk;

static char *folder_entry(const char *folder, size_t folder_len, const char *name,
                          size_t name_len, const char *prefix, size_t prefix_len) {
    /* folder[/name] NUL prefix[name/] NUL */
    size_t path_len = folder_len + (name_len ? 1 + name_len : 0);
    size_t stored_len = prefix_len + (name_len ? name_len + 1 : 0);
    char *entry = malloc(path_len + 1 + stored_len + 1);
    if (entry == NULL)
        return NULL;
    char *at = entry;
    memcpy(at, folder, folder_len);
    at += folder_len;
    if (name_len) {
        *at++ = '/';
        memcpy(at, name, name_len);
        at += name_len;
    }
    *at++ = '\0';
    memcpy(at, prefix, prefix_len);
    at += prefix_len;
    if (name_len) {
        memcpy(at, name, name_len);
        at += name_len;
        *at++ = '/';
    }
    *at = '\0';
    return entry;
}

/* With the lock held. */
static int push_entry(walk *w, char *entry) {
    if (entry == NULL)
        return WALK_NO_MEMORY;
    if (w->len == w->cap) {
        int64_t cap = w->cap ? w->cap * 2 : 256;
        char **stack = realloc(w->stack, (size_t)cap * sizeof(char *));
        if (stack == NULL) {
            free(entry);
            return WALK_NO_MEMORY;
        }
        w->stack = stack;
        w->cap = cap;
    }
    w->stack[w->len++] = entry;
    return 0;
}

walk *ocindex_walk_new(const char *root, int links, int stamps) {
    walk *w = calloc(1, sizeof(walk));
    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->changed, NULL);
    w->links = links;
    w->stamps = stamps;
    if (push_entry(w, folder_entry(root, strlen(root), "", 0, "", 0)) != 0) {
        pthread_cond_destroy(&w->changed);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

/* After every thread has left the walk. */
void ocindex_walk_free(walk *w) {
    for (int64_t i = 0; i < w->len; i++)
        free(w->stack[i]);
    free(w->stack);
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* Every thread ends at its next folder. */
void ocindex_walk_stop(walk *w) {
    pthread_mutex_lock(&w->lock);
    w->stopped = 1;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

/* A subfolder of a handed folder, found by the caller. */
int ocindex_walk_push(walk *w, const char *folder, const char *prefix) {
    pthread_mutex_lock(&w->lock);
    int result = push_entry(w, folder_entry(folder, strlen(folder), "", 0, prefix, strlen(prefix)));
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    return result;
}

/* The caller is done with a handed folder (after pushing its subfolders). */
void ocindex_walk_listed(walk *w, char *handed) {
    pthread_mutex_lock(&w->lock);
    w->listing--;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    free(handed);
}

/* The folder whose subfolder a walk thread opened last, kept open while the call lasts: its
 * other subfolders (the stack holds siblings together) are opened relative to it, one name for
 * the kernel to look up instead of the whole path (250,000 folders in OpenCode's part/ for a
 * million files). A folder moved away meanwhile is listed where it went, under its old path,
 * once: a walk is no snapshot, and the next one sees the move. */
typedef struct {
    int fd;
    size_t len;
    char *path;
} parent;

static void forget(parent *p) {
    if (p->fd >= 0)
        close(p->fd);
    free(p->path);
    *p = (parent){.fd = -1};
}

static int open_folder(parent *p, const char *folder) {
    const char *slash = strrchr(folder, '/');
    if (slash == NULL || slash == folder || slash[1] == '\0')
        return open(folder, FOLDER_FLAGS);
    size_t len = (size_t)(slash - folder);
    if (p->fd < 0 || p->len != len || memcmp(p->path, folder, len) != 0) {
        forget(p);
        char *path = malloc(len + 1);
        if (path == NULL)
            return open(folder, FOLDER_FLAGS);
        memcpy(path, folder, len);
        path[len] = '\0';
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            free(path);
            return open(folder, FOLDER_FLAGS);
        }
        *p = (parent){.fd = fd, .len = len, .path = path};
    }
    return openat(p->fd, slash + 1, FOLDER_FLAGS);
}

static int walk_next(walk *w, listing *out, int64_t rows, char **handed, parent *above);

/* Lists folders of the walk into out until it holds `rows` rows (WALK_ROWS) or none is left
 * (WALK_DONE). FULL: out has no room for the next folder's rows, FULL_DIRS for its subfolders'
 * names; it goes back on the stack, and the caller empties or grows the buffers and calls
 * again. */
int ocindex_walk_next(walk *w, listing *out, int64_t rows, char **handed) {
    parent above = {.fd = -1};
    int result = walk_next(w, out, rows, handed, &above);
    forget(&above);
    return result;
}

static int walk_next(walk *w, listing *out, int64_t rows, char **handed, parent *above) {
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (w->len == 0 && w->listing > 0 && !w->stopped)
            pthread_cond_wait(&w->changed, &w->lock);
        if (w->len == 0 || w->stopped) {
            pthread_cond_broadcast(&w->changed);
            pthread_mutex_unlock(&w->lock);
            return WALK_DONE;
        }
        char *entry = w->stack[--w->len];
        w->listing++;
        pthread_mutex_unlock(&w->lock);

        const char *prefix = entry + strlen(entry) + 1;
        size_t prefix_len = strlen(prefix);
        int64_t before = out->rows;
        int result = list_opened(open_folder(above, entry), prefix, (int64_t)prefix_len, w->links,
                                 w->stamps, out);
        if (result == FULL_DIRS || (result == FULL && before > 0)) {
            pthread_mutex_lock(&w->lock);
            w->listing--;
            int pushed = push_entry(w, entry); /* room was there: it was just taken */
            pthread_cond_broadcast(&w->changed);
            pthread_mutex_unlock(&w->lock);
            return pushed != 0 ? pushed : result;
        }
        if (result == FULL || result == NOT_ASCII) {
            *handed = entry;
            return WALK_HANDED;
        }
        int pushed = 0;
        pthread_mutex_lock(&w->lock);
        if (result >= 0) {
            for (int64_t at = 0; at < out->dirs_len && pushed == 0;) {
                const char *name = out->dirs + at;
                size_t n = strlen(name);
                at += (int64_t)n + 1;
                if (prefix_len == 0 && strcmp(name, "quarantine") == 0)
                    continue;
                pushed = push_entry(w, folder_entry(entry, strlen(entry), name, n, prefix, prefix_len));
            }
        }
        w->listing--;
        pthread_cond_broadcast(&w->changed);
        pthread_mutex_unlock(&w->lock);
        free(entry);
        if (pushed != 0)
            return pushed;
        if (out->rows >= rows)
            return WALK_ROWS;
    }
}
