/* doubt.c: the claims a Redis failure left in doubt (see scheduler.h).
 *
 * plan.c makes a claim "pending", produces its job, then turns the claim
 * "queued" once Kafka took the job, or releases it when Kafka did not.
 * When Redis does not answer one of those steps, the plan cannot know
 * what Redis holds:
 * - a claim script sent and not answered may still run: a frozen Redis
 *   runs what sits in its socket when it resumes, so the claim lands with
 *   no job behind it;
 * - a release not answered leaves the claim of a job Kafka never took;
 * - a mark_queued not answered leaves pending the claims of jobs Kafka took.
 * Left alone, each such claim holds its day or window until the claim
 * script presumes it lost (PENDING_CLAIM_MS, 45 s, in plan.c), and a day
 * whose job Kafka took is then fetched twice. This list settles them once
 * Redis answers again.
 *
 * Every entry names the claim by its exact value ("<job_id> <ms> pending
 * <token>"), and both scripts compare it before they write, so applying an
 * entry never touches a claim made since, by this scheduler or another
 * leader. A release is applied in two sweeps: a script still sitting in a
 * resumed Redis's socket has run by the time the first sweep's reply
 * comes back (Redis read that socket before, or while, it ran the first
 * sweep's command), so the second release, sent after that reply, comes
 * after it. A command held up longer (TCP retransmits after a network
 * partition) can land after both: that claim then waits for the claim
 * script's rule, as every claim did before this list. Marking queued is
 * harmless to repeat, and once is enough. */
#include <stdio.h>
#include <stdlib.h>

#include "scheduler.h"

typedef struct {
    sched_doubt_kind_t kind;
    int applied; /* sweeps that applied it with Redis answering */
    char key[256], jobkey[128], value[96];
} doubt_entry_t;

struct sched_doubt_s {
    doubt_entry_t *v;
    size_t n, cap, max;
    unsigned long refused; /* adds refused since the list last had room */
};

sched_doubt_t *sched_doubt_new(size_t max)
{
    sched_doubt_t *d = calloc(1, sizeof(*d));
    if (d)
        d->max = max;
    return d;
}

void sched_doubt_destroy(sched_doubt_t *d)
{
    if (d)
        free(d->v);
    free(d);
}

size_t sched_doubt_count(const sched_doubt_t *d)
{
    return d ? d->n : 0;
}

int sched_doubt_add(sched_doubt_t *d, sched_doubt_kind_t kind, const char *key, const char *jobkey,
                    const char *value)
{
    doubt_entry_t *e;
    if (!d)
        return -1;
    if (d->n == d->max) {
        d->refused++;
        return -2;
    }
    d->refused = 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        if (cap > d->max)
            cap = d->max;
        if (!(e = realloc(d->v, cap * sizeof(*e))))
            return -1;
        d->v = e, d->cap = cap;
    }
    e = &d->v[d->n];
    e->kind = kind, e->applied = 0;
    if ((size_t)snprintf(e->key, sizeof(e->key), "%s", key) >= sizeof(e->key) ||
        (size_t)snprintf(e->jobkey, sizeof(e->jobkey), "%s", jobkey) >= sizeof(e->jobkey) ||
        (size_t)snprintf(e->value, sizeof(e->value), "%s", value) >= sizeof(e->value))
        return -1; /* cannot name the claim exactly: leave it to PENDING_CLAIM_MS */
    d->n++;
    return 0;
}

unsigned long sched_doubt_refused(const sched_doubt_t *d)
{
    return d ? d->refused : 0;
}

int sched_doubt_sweep(sched_doubt_t *d, sched_doubt_apply_fn apply, void *arg)
{
    size_t kept = 0;
    int settled = 0, down = 0;
    if (!d)
        return 0;
    for (size_t i = 0; i < d->n; i++) {
        doubt_entry_t *e = &d->v[i];
        if (!down && apply(arg, e->kind, e->key, e->jobkey, e->value) == 0)
            e->applied++;
        else
            down = 1; /* Redis gone again: keep the rest as they are */
        if (e->applied >= (e->kind == SCHED_DOUBT_RELEASE ? 2 : 1)) {
            settled++;
            continue;
        }
        if (kept != i)
            d->v[kept] = *e;
        kept++;
    }
    d->n = kept;
    return settled;
}
