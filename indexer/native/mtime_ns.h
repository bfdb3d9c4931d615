/* st_mtime_ns as Python computes it, held at the bounds of a BIGINT (file_index's column)
 * where it would not fit: a date before 1677 or after 2262. Shared by the C libraries here. */
#ifndef OCINDEX_MTIME_NS_H
#define OCINDEX_MTIME_NS_H

#include <stdint.h>
#include <time.h>

static inline int64_t mtime_ns(struct timespec t) {
    int64_t ns;
    if (__builtin_mul_overflow((int64_t)t.tv_sec, (int64_t)1000000000, &ns) ||
        __builtin_add_overflow(ns, (int64_t)t.tv_nsec, &ns))
        return t.tv_sec < 0 ? INT64_MIN : INT64_MAX;
    return ns;
}

#endif
