/* Reads a batch of files for indexer/pipeline/reader.py (loaded with ctypes; `make` builds it,
 * and without it every file is read in Python).
 *
 * A realtime batch or a catch-up reads thousands of small files; in Python each costs five
 * system calls and their objects (8-9 us a file of the reader's GIL time, a third of a read).
 * Here the calls run with the GIL released, and the bytes land back to back in one buffer.
 *
 * Only the plain case is read here: a regular file (not a link, not a fifo) no bigger than the
 * limit, whose stamp (mtime_ns held at a BIGINT's bounds, size) is the same before and after
 * one read(2) of size + 1 bytes that returned exactly size bytes. Anything else is left to the
 * Python reader, which reads it again and decides (a link, a file gone, one changed while
 * read, an error): one set of rules, reader.py's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtime_ns.h"

#define READ 0    /* read: its bytes are at offsets[i], sizes[i] of them */
#define ELSEWISE 1 /* not the plain case: the Python reader reads it */

/* The arguments and codes above, as reader.py expects them: a library built from another
 * version of this file is not used. */
#define ABI 1

int ocindex_read_files_abi(void) { return ABI; }

/* Reads paths[0..n) in order into buf (capacity cap) and returns how many it looked at: all
 * n, or fewer when the next plain file would not fit (the caller calls again for the rest with
 * an emptied or bigger buffer; a file bigger than cap alone is ELSEWISE). For each: codes[i],
 * and for a READ file its bytes at buf[offsets[i]:offsets[i] + sizes[i]] and its mtime_ns. */
int64_t ocindex_read_files(const char *const *paths, int64_t n, int64_t max_bytes, char *buf,
                           int64_t cap, int8_t *codes, int64_t *offsets, int64_t *sizes,
                           int64_t *mtimes) {
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        struct stat before, after;
        codes[i] = ELSEWISE;
        /* Opened first, then looked at: one path lookup a file, not two (an lstat first). A
         * link does not open (O_NOFOLLOW), a fifo does not block (O_NONBLOCK); whatever is not
         * a regular file is closed unread. */
        int fd = open(paths[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            continue;
        int64_t want = 0; /* the size and one more: a file that grew reads long */
        if (fstat(fd, &before) != 0 || !S_ISREG(before.st_mode) || before.st_size > max_bytes ||
            (want = (int64_t)before.st_size + 1) > cap) {
            close(fd);
            continue;
        }
        if (used + want > cap) {
            close(fd);
            return i;
        }
        ssize_t got = read(fd, buf + used, (size_t)want);
        int stat_failed = fstat(fd, &after) != 0;
        close(fd);
        if (got != (ssize_t)before.st_size || stat_failed || after.st_size != before.st_size ||
            mtime_ns(after.st_mtim) != mtime_ns(before.st_mtim))
            continue; /* changed while read, or unreadable: decided in Python */
        codes[i] = READ;
        offsets[i] = used;
        sizes[i] = got;
        mtimes[i] = mtime_ns(after.st_mtim);
        used += got;
    }
    return n;
}
