#include "reply_arena.h"

#include <stdlib.h>
#include <string.h>

typedef struct block {
    struct block *next;
    size_t size;
    size_t used;
    /* 8-aligned: redisReply holds pointers and a long long. */
    long long data[];
} block;

struct fieldops_reply_arena {
    block *blocks;     /* newest first */
    size_t held;       /* replies returned and not yet released */
};

enum {
    MIN_BLOCK = 64 * 1024,
    /* A reply larger than this (a huge XRANGE) is not kept around after it is released. */
    MAX_RETAINED = 8 * 1024 * 1024,
};

static block *new_block(size_t size) {
    block *b = malloc(sizeof(block) + size);
    if (b == NULL) return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

static void *arena_alloc(fieldops_reply_arena *arena, size_t size) {
    size = (size + 7) & ~(size_t)7;
    block *b = arena->blocks;
    if (b == NULL || b->size - b->used < size) {
        size_t want = b == NULL ? MIN_BLOCK : b->size * 2;
        if (want < size) want = size;
        block *fresh = new_block(want);
        if (fresh == NULL) return NULL;
        fresh->next = b;
        arena->blocks = fresh;
        b = fresh;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

/* Hangs the new element on its parent array, as hiredis's own functions do. */
static void *attach(const redisReadTask *task, redisReply *reply) {
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = reply;
    }
    return reply;
}

/* The type is given, not the task's: a nil bulk string comes from a '$' task, as in hiredis. */
static redisReply *new_reply(const redisReadTask *task, int type, size_t extra) {
    redisReply *reply = arena_alloc(task->privdata, sizeof(redisReply) + extra);
    if (reply == NULL) return NULL;
    memset(reply, 0, sizeof(redisReply));
    reply->type = type;
    return reply;
}

static void *create_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *reply = new_reply(task, task->type, len + 1);
    if (reply == NULL) return NULL;
    reply->str = (char *)(reply + 1);
    memcpy(reply->str, str, len);
    reply->str[len] = '\0';
    reply->len = len;
    return attach(task, reply);
}

static void *create_array(const redisReadTask *task, int elements) {
    size_t count = elements > 0 ? (size_t)elements : 0;
    redisReply *reply = new_reply(task, REDIS_REPLY_ARRAY, count * sizeof(redisReply *));
    if (reply == NULL) return NULL;
    reply->elements = count;
    if (count > 0) {
        reply->element = (redisReply **)(reply + 1);
        memset(reply->element, 0, count * sizeof(redisReply *));
    }
    return attach(task, reply);
}

static void *create_integer(const redisReadTask *task, long long value) {
    redisReply *reply = new_reply(task, REDIS_REPLY_INTEGER, 0);
    if (reply == NULL) return NULL;
    reply->integer = value;
    return attach(task, reply);
}

static void *create_nil(const redisReadTask *task) {
    redisReply *reply = new_reply(task, REDIS_REPLY_NIL, 0);
    if (reply == NULL) return NULL;
    return attach(task, reply);
}

/* Elements live in the arena; hiredis calls this on errors and when the reader is freed. */
static void free_object(void *reply) {
    (void)reply;
}

static redisReplyObjectFunctions arena_functions = {
    create_string, create_array, create_integer, create_nil, free_object,
};

fieldops_reply_arena *fieldops_reply_arena_install(redisContext *context) {
    fieldops_reply_arena *arena = calloc(1, sizeof(fieldops_reply_arena));
    if (arena == NULL) return NULL;
    context->reader->fn = &arena_functions;
    context->reader->privdata = arena;
    return arena;
}

void fieldops_reply_arena_hold(fieldops_reply_arena *arena) {
    arena->held += 1;
}

void fieldops_reply_arena_release(fieldops_reply_arena *arena, const redisReader *reader) {
    if (arena->held > 0) arena->held -= 1;
    /* ridx is -1 between replies; otherwise part of the next one is already in the arena. */
    if (arena->held > 0 || reader == NULL || reader->ridx != -1 || arena->blocks == NULL) return;
    block *newest = arena->blocks;
    if (newest->next == NULL && newest->size <= MAX_RETAINED) {
        newest->used = 0;
        return;
    }
    /* Several blocks were needed: keep one block as large as all of them (up to a cap),
       so the next reply of this size needs no allocation at all. */
    size_t total = 0;
    for (block *b = newest; b != NULL;) {
        block *next = b->next;
        total += b->size;
        free(b);
        b = next;
    }
    arena->blocks = new_block(total < MAX_RETAINED ? total : MAX_RETAINED);
}

void fieldops_reply_arena_free(fieldops_reply_arena *arena) {
    if (arena == NULL) return;
    for (block *b = arena->blocks; b != NULL;) {
        block *next = b->next;
        free(b);
        b = next;
    }
    free(arena);
}

size_t fieldops_reply_arena_held(const fieldops_reply_arena *arena) {
    return arena->held;
}

size_t fieldops_reply_arena_capacity(const fieldops_reply_arena *arena) {
    size_t total = 0;
    for (const block *b = arena->blocks; b != NULL; b = b->next) total += b->size;
    return total;
}
