/* maxmemory-policy names, as redis spells them. */
#include "backend/memory/store.h"

#include <strings.h>

static const char *const policy_names[] = {
    [STORE_NOEVICTION] = "noeviction",
    [STORE_ALLKEYS_LRU] = "allkeys-lru",
    [STORE_VOLATILE_LRU] = "volatile-lru",
    [STORE_ALLKEYS_LFU] = "allkeys-lfu",
    [STORE_VOLATILE_LFU] = "volatile-lfu",
    [STORE_VOLATILE_TTL] = "volatile-ttl",
    [STORE_ALLKEYS_RANDOM] = "allkeys-random",
    [STORE_VOLATILE_RANDOM] = "volatile-random",
};

int store_policy_parse(const char *name, store_policy_t *out)
{
    for (size_t i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++) {
        if (strcasecmp(name, policy_names[i]) == 0) {
            *out = (store_policy_t)i;
            return 0;
        }
    }
    return -1;
}

const char *store_policy_name(store_policy_t p)
{
    if ((unsigned)p >= sizeof(policy_names) / sizeof(policy_names[0]))
        return "unknown";
    return policy_names[p];
}
