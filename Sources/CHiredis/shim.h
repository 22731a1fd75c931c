#ifndef FIELDOPS_CHIREDIS_SHIM_H
#define FIELDOPS_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>
#include <poll.h>

/// Reads the reply's element at index; Swift cannot index `redisReply **` ergonomically.
static inline redisReply *fieldops_reply_element(const redisReply *reply, size_t index) {
    return reply->element[index];
}

#endif
