#ifndef FIELDOPS_REPLY_ARENA_H
#define FIELDOPS_REPLY_ARENA_H

#include <hiredis/hiredis.h>

/// hiredis builds every reply element with its own calloc and string malloc (about 33 per
/// stream entry) and frees them one by one. A connection that reads pages of thousands of
/// entries spends most of its time in malloc: glibc consolidates the freed chunks on the next
/// large request. This arena gives hiredis reply objects bump-allocated from one block per
/// connection, laid out exactly like hiredis's own `redisReply`, and reuses the block once no
/// reply is held any more.
typedef struct fieldops_reply_arena fieldops_reply_arena;

/// Makes `context`'s reader build replies in a new arena; NULL when out of memory (the
/// context then keeps hiredis's own allocation). Replies must then be released with
/// `fieldops_reply_arena_release`, never `freeReplyObject`.
fieldops_reply_arena *fieldops_reply_arena_install(redisContext *context);

/// Counts a reply returned by `redisGetReply` as held.
void fieldops_reply_arena_hold(fieldops_reply_arena *arena);

/// Releases a held reply. When none is held and `reader` is not inside a partly read reply,
/// the arena's memory is reused for the next replies. `reader` is NULL once the context is freed.
void fieldops_reply_arena_release(fieldops_reply_arena *arena, const redisReader *reader);

/// Replies held now.
size_t fieldops_reply_arena_held(const fieldops_reply_arena *arena);

/// Frees the arena and every reply in it; call after `redisFree` of its context, once none is held.
void fieldops_reply_arena_free(fieldops_reply_arena *arena);

/// Bytes the arena holds now (for tests).
size_t fieldops_reply_arena_capacity(const fieldops_reply_arena *arena);

#endif
