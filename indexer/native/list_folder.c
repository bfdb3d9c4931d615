/* Lists one folder of the storage tree for indexer/listing.py (loaded with ctypes; `make`
 * builds it, and without it the same listing runs in Python).
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
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtime_ns.h"

/* Results: rows appended (>= 0), or one of these, with nothing appended. */
#define UNLISTABLE -1 /* the folder vanished or cannot be opened or read */
#define FULL -2       /* a buffer is too small: empty or grow them and call again */
#define NOT_ASCII -3  /* a name is not ASCII: the caller lists this folder itself, in Python,
                         which escapes a name that is not UTF-8 as stored paths need */

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

/* The layout of `listing` and the rules above, as listing.py expects them: a library built
 * from another version of this file is not used (the walk runs in Python). */
#define ABI 1

int ocindex_list_folder_abi(void) { return ABI; }

int ocindex_list_folder(const char *folder, const char *prefix, int64_t prefix_len, int links,
                        listing *out) {
    int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return UNLISTABLE;
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return UNLISTABLE;
    }
    /* Appended past the lengths, which move only when the whole folder fits. */
    int64_t paths_len = out->paths_len, rows = out->rows, dirs_len = 0;
    int result = 0;
    struct stat st;
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(dir);
        if (entry == NULL) {
            if (errno != 0)
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
        int is_dir = entry->d_type == DT_DIR;
        if (!is_dir) {
            /* The listing's type spares an lstat only where it cannot be a row. */
            if (entry->d_type != DT_REG && entry->d_type != DT_LNK && entry->d_type != DT_UNKNOWN)
                continue;
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            if (S_ISDIR(st.st_mode))
                is_dir = 1;
            else if (!S_ISREG(st.st_mode) && !(links && S_ISLNK(st.st_mode)))
                continue;
        }
        if (is_dir) {
            if (dirs_len + (int64_t)n + 1 > out->dirs_cap) {
                result = FULL;
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
        out->mtimes[rows] = mtime_ns(st.st_mtim);
        out->sizes[rows] = (int64_t)st.st_size;
        out->offsets[++rows] = (int32_t)paths_len;
    }
done:
    closedir(dir);
    if (result < 0)
        return result;
    result = (int)(rows - out->rows);
    out->paths_len = paths_len;
    out->rows = rows;
    out->dirs_len = dirs_len;
    return result;
}
