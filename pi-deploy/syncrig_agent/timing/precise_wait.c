/* The last step of waiting for a grid target, done without Python's GIL.
 *
 * Called through ctypes, which releases the GIL for the duration of the call: the sleep, the
 * final spin and the timestamps all happen here, so another Python thread holding the GIL at the
 * moment the target arrives can delay what we do *after* the frame's instant, but never the
 * instant itself. The sleep is clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME): absolute, so no
 * error accumulates from frame to frame.
 *
 * The spin ends on CLOCK_REALTIME, the clock the target is set on and the frame is stamped with,
 * and the read that ends it is the stamp. Ending it on CLOCK_MONOTONIC at a target converted from
 * realtime made a wake tens of ns early whenever the realtime-minus-monotonic estimate (bracketed
 * clock reads in Python) came out larger than the true offset by more than the few ns between the
 * helper's monotonic and realtime reads: the never-early promise then rested on a measurement.
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

/* Sleep until target_mono - spin_ns (target_mono: target_real converted to CLOCK_MONOTONIC, only
 * used to arm the sleep), then spin until CLOCK_REALTIME >= target_real (yielding, so spinners
 * that outnumber the cores still each read the clock within a few µs of their target), never
 * spinning longer than spin_ns + spin_cap_ns. *out_realtime is the realtime read that ended the
 * spin, so it is >= target_real unless the cap ended it (the realtime clock was stepped back
 * while we waited); the caller checks and waits again. *out_monotonic is read right after it.
 * Only once the target is reached, and if relax_policy >= 0, the thread drops to that policy and
 * priority right here, so a camera still waiting for a core gets it within µs rather than after
 * we are back in Python. */
int syncrig_wait_and_stamp(int64_t target_real, int64_t target_mono, int64_t spin_ns,
                           int64_t spin_cap_ns, int64_t *out_realtime, int64_t *out_monotonic,
                           int relax_policy, int relax_priority)
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
    int64_t limit = now_ns(CLOCK_MONOTONIC) + spin_ns + spin_cap_ns;
    int64_t real = now_ns(CLOCK_REALTIME);
    while (real < target_real && now_ns(CLOCK_MONOTONIC) < limit) {
        sched_yield();
        real = now_ns(CLOCK_REALTIME);
    }
    *out_realtime = real;
    *out_monotonic = now_ns(CLOCK_MONOTONIC);
    if (relax_policy >= 0 && real >= target_real) {
        struct sched_param param = {.sched_priority = relax_priority};
        sched_setscheduler(0, relax_policy, &param);
    }
    return 0;
}
