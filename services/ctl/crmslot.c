/* crmslot.c: the CRM requests ltvctl makes itself (integration test,
 * reconcile's daily summary) count against the integration's limits like
 * the fetchers' (a Connect or Reconcile button pressed during a sync must
 * not push the CRM over them): a lease from the shared limiter per request
 * when Redis answers; without Redis, requests are spaced 1/max_rps apart and
 * a note says so. */
#include <stdio.h>

#include "ctl.h"
#include "lt_clock.h"

#define SLOT_LEASE_TTL_MS  130000 /* the request timeout, and then some */
#define SLOT_LEASE_WAIT_MS 60000

void ctl_crm_slots_open(const ctl_t *ctl, const lt_integration_t *in, ctl_crm_slots_t *s)
{
    char errstr[256];
    s->leased = 0;
    s->lim = NULL;
    if ((s->redis =
             lt_redis_new(lt_config_str(ctl->cfg, "REDIS_URL"), 3000, errstr, sizeof(errstr))))
        s->lim = lt_limits_new(s->redis, lt_config_str(ctl->cfg, "REDIS_PREFIX"));
    if (!s->lim)
        fprintf(ctl->err,
                "note: Redis unreachable (%s): requests to the CRM are spaced by %s's "
                "max_rps, not counted with a running sync's\n",
                s->redis ? "out of memory" : errstr, in->id);
}

int ctl_crm_slot_acquire(ctl_crm_slots_t *s, const lt_integration_t *in, FILE *msgs)
{
    char errstr[256];
    long long waited = 0, wait = 0;
    if (!s->lim) {
        int rps = in->max_requests_per_second > 0 ? in->max_requests_per_second : 1;
        lt_clock_nap_ms((long long)(1000.0 * (1.0 + LT_LIMITS_RATE_MARGIN) / rps) + 1);
        return 0;
    }
    while (waited < SLOT_LEASE_WAIT_MS) {
        int rc =
            lt_limits_try_acquire(s->lim, in->id, in->max_requests_per_second, in->max_in_flight,
                                  SLOT_LEASE_TTL_MS, &s->lease, &wait, errstr, sizeof(errstr));
        if (rc == 1) {
            s->leased = 1;
            return 0;
        }
        if (rc < 0) {
            fprintf(msgs, "FAILED: the limiter in Redis did not answer: %s\n", errstr);
            return -1;
        }
        wait = wait > 0 ? wait : 20;
        lt_clock_nap_ms(wait);
        waited += wait;
    }
    fprintf(msgs,
            "FAILED: no request slot of %s's limits came free in %d s (is a sync using "
            "them all?)\n",
            in->id, SLOT_LEASE_WAIT_MS / 1000);
    return -1;
}

void ctl_crm_slot_release(ctl_crm_slots_t *s)
{
    if (s->leased)
        lt_limits_release(s->lim, &s->lease);
    s->leased = 0;
}

void ctl_crm_slots_close(ctl_crm_slots_t *s)
{
    ctl_crm_slot_release(s);
    lt_limits_destroy(s->lim);
    lt_redis_destroy(s->redis);
    s->lim = NULL;
    s->redis = NULL;
}
