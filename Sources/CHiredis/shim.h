#include <hiredis/hiredis.h>
#include <sys/time.h>

// hiredis's reply types are macros, and a redisReply's element vector is a pointer to pointers:
// small typed helpers so Swift reads replies without casts.
static inline int tandem_redis_reply_string(void) { return REDIS_REPLY_STRING; }
static inline int tandem_redis_reply_array(void) { return REDIS_REPLY_ARRAY; }
static inline int tandem_redis_reply_integer(void) { return REDIS_REPLY_INTEGER; }
static inline int tandem_redis_reply_nil(void) { return REDIS_REPLY_NIL; }
static inline int tandem_redis_reply_status(void) { return REDIS_REPLY_STATUS; }
static inline int tandem_redis_reply_error(void) { return REDIS_REPLY_ERROR; }

static inline redisReply *tandem_redis_reply_element(const redisReply *reply, size_t index) {
    return reply->element[index];
}
