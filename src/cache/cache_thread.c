/*
 * cache/cache_thread: the priority of the thread pool's threads while they run the cache's work (codec
 * jobs, dictionary trainings).
 */
#include "cache/cache_int.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Codec jobs run at a lower priority than the event loop (codec-thread-nice): on a machine with few
 * cores, a level-19 compression of a large value otherwise competes on equal terms with the loop thread
 * and every small request waits behind it. Linux keeps a nice value per thread, so each pool thread
 * lowers its own the first time it runs a job; zstd's worker threads, created from it, inherit it.
 */
static int thread_nice_wanted;
static _Thread_local int thread_nice_applied = -1;

void cache_set_thread_nice(int nice)
{
    __atomic_store_n(&thread_nice_wanted, nice, __ATOMIC_RELAXED);
}

void cache_job_priority(void)
{
    int want = __atomic_load_n(&thread_nice_wanted, __ATOMIC_RELAXED);

    if (thread_nice_applied == want)
        return;
    thread_nice_applied = want;
    /* raising a lowered priority back may be refused (no CAP_SYS_NICE); the job runs all the same */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), want);
}
