/* The last step of waiting for a grid target, done without Python's GIL.
 *
 * Called through ctypes, which releases the GIL for the duration of the call: the sleep, the
 * final spin and the timestamps all happen here, so another Python thread holding the GIL at the
 * moment the target arrives can delay what we do *after* the frame's instant, but never the
 * instant itself. The sleep is clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME): absolute, so no
 * error accumulates from frame to frame.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

static int64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleep until target_mono - spin_ns, then spin until target_mono (yielding, so spinners that
 * outnumber the cores still each read the clock within a few µs of their target), never
 * spinning longer than spin_ns + spin_cap_ns. Stamps CLOCK_REALTIME and CLOCK_MONOTONIC at once
 * after the target is reached. Then, if relax_policy >= 0, drops the thread to that policy and
 * priority right here, so a camera still waiting for a core gets it within µs rather than after
 * we are back in Python. */
int syncrig_wait_and_stamp(int64_t target_mono, int64_t spin_ns, int64_t spin_cap_ns,
                           int64_t *out_realtime, int64_t *out_monotonic, int relax_policy,
                           int relax_priority)
{
    int64_t wake = target_mono - spin_ns;
    if (wake > now_ns(CLOCK_MONOTONIC)) {
        struct timespec ts = {(time_t)(wake / 1000000000LL), (long)(wake % 1000000000LL)};
        int rc;
        do {
            rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } while (rc == EINTR);
        if (rc != 0)
            return rc;
    }
    int64_t mono = now_ns(CLOCK_MONOTONIC);
    int64_t limit = mono + spin_ns + spin_cap_ns;
    while (mono < target_mono && mono < limit) {
        sched_yield();
        mono = now_ns(CLOCK_MONOTONIC);
    }
    *out_realtime = now_ns(CLOCK_REALTIME);
    *out_monotonic = mono;
    if (relax_policy >= 0) {
        struct sched_param param = {.sched_priority = relax_priority};
        sched_setscheduler(0, relax_policy, &param);
    }
    return 0;
}
