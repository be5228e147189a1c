/*
 * The memory backend's eviction policies by name. The names are the configuration's (maxmemory-policy in
 * config_table.c, as redis spells them); store_policy_t has the same values, checked here.
 */
#include "backend/memory/store.h"

#include "config.h"

_Static_assert((int)STORE_NOEVICTION == MAXMEMORY_NOEVICTION && (int)STORE_ALLKEYS_LRU == MAXMEMORY_ALLKEYS_LRU &&
               (int)STORE_VOLATILE_LRU == MAXMEMORY_VOLATILE_LRU && (int)STORE_ALLKEYS_LFU == MAXMEMORY_ALLKEYS_LFU &&
               (int)STORE_VOLATILE_LFU == MAXMEMORY_VOLATILE_LFU && (int)STORE_VOLATILE_TTL == MAXMEMORY_VOLATILE_TTL &&
               (int)STORE_ALLKEYS_RANDOM == MAXMEMORY_ALLKEYS_RANDOM &&
               (int)STORE_VOLATILE_RANDOM == MAXMEMORY_VOLATILE_RANDOM,
               "store_policy_t and enum config_maxmemory_policy differ");

const char *store_policy_name(store_policy_t p)
{
    const char *name = config_enum_name("maxmemory-policy", (int)p);
    return name != NULL ? name : "unknown";
}
