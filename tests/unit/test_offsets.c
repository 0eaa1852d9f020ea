/* test_offsets: lt_offsets, the one "store the offset after each
 * partition's finished prefix" of the fetcher, normalizer and sink. Fixed
 * cases (in order, out of order, gaps, >1024 partitions, 100k messages,
 * many classes, a first message that never finishes), then random
 * sequences against a plain reference model (seeded, reproducible). */
#include <stdint.h>
#include <stdlib.h>

#include "lt_offsets.h"
#include "lt_test.h"

/* Takes every advance: next[cls * nparts + partition] (-1 when none);
 * returns how many, or -1 when a partition came twice. */
static int take_all(lt_offsets_t *t, int64_t *next, int nclasses, int nparts)
{
    int cls, n = 0;
    int32_t p;
    int64_t off;
    for (int i = 0; i < nclasses * nparts; i++)
        next[i] = -1;
    while (lt_offsets_take(t, &cls, &p, &off)) {
        if (cls < 0 || cls >= nclasses || p < 0 || p >= nparts || next[cls * nparts + p] != -1)
            return -1;
        next[cls * nparts + p] = off;
        n++;
    }
    return n;
}

/* The one advance waiting, or -1 (and -2 when more than one). */
static int64_t take_one(lt_offsets_t *t, int want_cls, int32_t want_p)
{
    int cls;
    int32_t p;
    int64_t off;
    if (!lt_offsets_take(t, &cls, &p, &off))
        return -1;
    if (cls != want_cls || p != want_p || lt_offsets_take(t, &cls, &p, &off))
        return -2;
    return off;
}

LT_TEST(in_order)
{
    lt_offsets_t *t = lt_offsets_new();
    int bad = 0;
    for (int64_t o = 0; o < 10; o++)
        bad += lt_offsets_add(t, 0, 3, o) != 0;
    CHECK_INT(lt_offsets_pending(t), 10);
    CHECK_INT(take_one(t, 0, 3), -1);
    for (int64_t o = 0; o < 10; o++) {
        bad += lt_offsets_done(t, 0, 3, o) != 1;
        bad += take_one(t, 0, 3) != o + 1;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(lt_offsets_pending(t), 0);
    CHECK_INT(lt_offsets_done(t, 0, 3, 9), -1); /* finished already */
    lt_offsets_destroy(t);
    lt_offsets_destroy(NULL);
}

LT_TEST(out_of_order)
{
    lt_offsets_t *t = lt_offsets_new();
    for (int64_t o = 0; o < 5; o++)
        lt_offsets_add(t, 0, 0, o);
    CHECK_INT(lt_offsets_done(t, 0, 0, 2), 0);
    CHECK_INT(lt_offsets_done(t, 0, 0, 2), -1);
    CHECK_INT(take_one(t, 0, 0), -1);
    CHECK_INT(lt_offsets_done(t, 0, 0, 0), 1);
    CHECK_INT(lt_offsets_done(t, 0, 0, 1), 1); /* 0, 1, 2 done: store 3 */
    CHECK_INT(take_one(t, 0, 0), 3);           /* once, the latest */
    CHECK_INT(lt_offsets_pending(t), 2);
    CHECK_INT(lt_offsets_done(t, 0, 0, 4), 0);
    CHECK_INT(lt_offsets_done(t, 0, 0, 3), 1);
    CHECK_INT(take_one(t, 0, 0), 5);
    CHECK_INT(lt_offsets_done(t, 0, 0, 99), -1);
    CHECK_INT(lt_offsets_done(t, 0, 7, 0), -1); /* unknown partition, class */
    CHECK_INT(lt_offsets_done(t, 5, 0, 0), -1);
    CHECK_INT(lt_offsets_pending(t), 0);
    lt_offsets_destroy(t);
}

/* Offsets with holes (compaction, transaction markers): the store is the
 * offset after the last finished message, never a hole's. */
LT_TEST(gaps)
{
    lt_offsets_t *t = lt_offsets_new();
    lt_offsets_add(t, 1, 2, 10);
    lt_offsets_add(t, 1, 2, 13);
    lt_offsets_add(t, 1, 2, 20);
    CHECK_INT(lt_offsets_done(t, 1, 2, 11), -1);
    CHECK_INT(lt_offsets_done(t, 1, 2, 13), 0);
    CHECK_INT(lt_offsets_done(t, 1, 2, 10), 1);
    CHECK_INT(take_one(t, 1, 2), 14);
    CHECK_INT(lt_offsets_done(t, 1, 2, 20), 1);
    CHECK_INT(take_one(t, 1, 2), 21);
    lt_offsets_destroy(t);
}

/* LTVSYNC_TOPIC_PARTITIONS allows 1024; the old copies stopped at 64, 256
 * and 576 messages. Every partition advances, each taken once. */
LT_TEST(many_partitions)
{
    enum { NP = 1500 };
    lt_offsets_t *t = lt_offsets_new();
    int64_t *next = malloc(NP * sizeof(*next));
    int bad = 0;
    for (int64_t o = 0; o < 3; o++)
        for (int32_t p = NP - 1; p >= 0; p--)
            bad += lt_offsets_add(t, 0, p, 100 * o + p) != 0;
    for (int32_t p = 0; p < NP; p++)
        for (int64_t o = 0; o < 2; o++)
            bad += lt_offsets_done(t, 0, p, 100 * o + p) != 1;
    CHECK_INT(lt_offsets_pending(t), NP);
    CHECK_INT(take_all(t, next, 1, NP), NP);
    for (int32_t p = 0; p < NP; p++)
        bad += next[p] != 100 + p + 1;
    CHECK_INT(bad, 0);
    /* a sparse high partition number works too */
    CHECK_INT(lt_offsets_add(t, 0, 100000, 7), 0);
    CHECK_INT(lt_offsets_done(t, 0, 100000, 7), 1);
    CHECK_INT(take_one(t, 0, 100000), 8);
    free(next);
    lt_offsets_destroy(t);
}

LT_TEST(hundred_thousand)
{
    enum { N = 100000, NP = 7 };
    lt_offsets_t *t = lt_offsets_new();
    int64_t next[NP], stored[NP] = {0};
    int bad = 0;
    /* in order across partitions, stored every 1000 messages and at the end */
    for (int64_t i = 0; i < N; i++)
        bad += lt_offsets_add(t, 0, (int32_t)(i % NP), i / NP) != 0;
    for (int64_t i = 0; i < N; i++) {
        bad += lt_offsets_done(t, 0, (int32_t)(i % NP), i / NP) != 1;
        if (i % 1000 == 999 || i == N - 1) {
            bad += take_all(t, next, 1, NP) != NP;
            for (int p = 0; p < NP; p++)
                bad += next[p] <= stored[p] ? 1 : ((stored[p] = next[p]), 0);
        }
    }
    for (int p = 0; p < NP; p++) /* partition p holds offsets 0 .. (N-1-p)/NP */
        bad += stored[p] != (N - 1 - p) / NP + 1;
    CHECK_INT(bad, 0);
    CHECK_INT(lt_offsets_pending(t), 0);
    /* one partition, finished newest first: nothing moves until the oldest */
    for (int64_t o = 0; o < N; o++)
        bad += lt_offsets_add(t, 1, 0, o) != 0;
    for (int64_t o = N - 1; o > 0; o--)
        bad += lt_offsets_done(t, 1, 0, o) != 0;
    CHECK_INT(bad, 0);
    CHECK_INT(lt_offsets_pending(t), N);
    CHECK_INT(take_one(t, 1, 0), -1);
    CHECK_INT(lt_offsets_done(t, 1, 0, 0), 1);
    CHECK_INT(take_one(t, 1, 0), N);
    CHECK_INT(lt_offsets_pending(t), 0);
    lt_offsets_destroy(t);
}

/* Classes (topics, consumers) keep apart even with equal partition numbers. */
LT_TEST(many_classes)
{
    enum { NC = 40, NP = 12 };
    lt_offsets_t *t = lt_offsets_new();
    int64_t next[NC * NP];
    int bad = 0;
    for (int c = 0; c < NC; c++)
        for (int32_t p = 0; p < NP; p++)
            for (int64_t o = 0; o < 4; o++)
                bad += lt_offsets_add(t, c, p, 1000 * c + o) != 0;
    for (int c = 0; c < NC; c++)
        for (int32_t p = 0; p < NP; p++)
            for (int64_t o = 0; o <= (c + p) % 4; o++)
                lt_offsets_done(t, c, p, 1000 * c + o);
    CHECK_INT(take_all(t, next, NC, NP), NC * NP);
    for (int c = 0; c < NC; c++)
        for (int32_t p = 0; p < NP; p++)
            bad += next[c * NP + p] != 1000 * c + (c + p) % 4 + 1;
    CHECK_INT(bad, 0);
    lt_offsets_destroy(t);
}

/* The fetcher's wedge: a message that never finishes holds back its own
 * partition, however many finish after it, and no other. */
LT_TEST(unfinished_blocks_only_itself)
{
    enum { NP = 8, PER = 5000 };
    lt_offsets_t *t = lt_offsets_new();
    int64_t next[NP];
    int bad = 0;
    for (int64_t o = 0; o < PER; o++)
        for (int32_t p = 0; p < NP; p++)
            bad += lt_offsets_add(t, 0, p, o) != 0;
    for (int64_t o = 0; o < PER; o++)
        for (int32_t p = 0; p < NP; p++)
            if (p != 3 || o != 0)
                lt_offsets_done(t, 0, p, o);
    CHECK_INT(take_all(t, next, 1, NP), NP - 1);
    for (int32_t p = 0; p < NP; p++)
        bad += next[p] != (p == 3 ? -1 : PER);
    CHECK_INT(bad, 0);
    CHECK_INT(lt_offsets_pending(t), PER); /* partition 3's, all held */
    CHECK_INT(lt_offsets_done(t, 0, 3, 0), 1);
    CHECK_INT(take_one(t, 0, 3), PER);
    CHECK_INT(lt_offsets_pending(t), 0);
    lt_offsets_destroy(t);
}

/* Revocation, and the consumer going back (redelivery after a rebalance). */
LT_TEST(forget_and_go_back)
{
    lt_offsets_t *t = lt_offsets_new();
    for (int64_t o = 5; o < 9; o++)
        lt_offsets_add(t, 0, 1, o);
    lt_offsets_add(t, 0, 2, 0);
    CHECK_INT(lt_offsets_done(t, 0, 1, 5), 1);
    lt_offsets_forget_partition(t, 0, 1);
    lt_offsets_forget_partition(t, 0, 9); /* never seen: no-op */
    lt_offsets_forget_partition(t, 3, 1);
    CHECK_INT(lt_offsets_pending(t), 1);
    CHECK_INT(take_one(t, 0, 1), -1); /* its advance is gone too */
    CHECK_INT(lt_offsets_done(t, 0, 1, 6), -1);
    CHECK_INT(lt_offsets_add(t, 0, 1, 6), 0);
    CHECK_INT(lt_offsets_add(t, 0, 1, 7), 0);
    CHECK_INT(lt_offsets_done(t, 0, 1, 7), 0);
    CHECK_INT(lt_offsets_add(t, 0, 1, 6), 0); /* went back: 6, 7 come again */
    CHECK_INT(lt_offsets_pending(t), 2);
    CHECK_INT(lt_offsets_done(t, 0, 1, 7), -1);
    CHECK_INT(lt_offsets_done(t, 0, 1, 6), 1);
    CHECK_INT(take_one(t, 0, 1), 7);
    lt_offsets_destroy(t);
}

/* After a failed add nothing is released: the safe side. */
LT_TEST(failed_add_releases_nothing)
{
    lt_offsets_t *t = lt_offsets_new();
    int cls;
    int32_t p;
    int64_t off;
    CHECK_INT(lt_offsets_add(t, 0, 0, 0), 0);
    CHECK_INT(lt_offsets_add(t, 0, -1, 0), -1);
    CHECK_INT(lt_offsets_add(t, 0, 0, 1), -1);
    CHECK_INT(lt_offsets_done(t, 0, 0, 0), 0);
    CHECK_INT(lt_offsets_take(t, &cls, &p, &off), 0);
    lt_offsets_destroy(t);
    t = lt_offsets_new();
    CHECK_INT(lt_offsets_add(t, -1, 0, 0), -1);
    lt_offsets_destroy(t);
    t = lt_offsets_new();
    CHECK_INT(lt_offsets_add(t, 0, 0, -5), -1);
    lt_offsets_destroy(t);
}

/* ---- random sequences against a reference model ---- */

enum { MC = 3, MP = 5, MMAX = 400 };

typedef struct {
    int64_t off[MMAX];
    int done[MMAX];
    int n;
    int64_t last, adv; /* last added; advance not yet taken (-1 none) */
} model_part_t;

static model_part_t model[MC * MP];

static uint64_t rng_state;
static uint64_t rnd(uint64_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state % n;
}

static void model_forget(model_part_t *m)
{
    m->n = 0;
    m->last = m->adv = -1;
}

static void model_add(model_part_t *m, int64_t off)
{
    if (m->last >= 0 && off <= m->last)
        model_forget(m);
    m->off[m->n] = off;
    m->done[m->n++] = 0;
    m->last = off;
}

static int model_done(model_part_t *m, int64_t off)
{
    int i = 0, k = 0;
    while (i < m->n && m->off[i] != off)
        i++;
    if (i == m->n || m->done[i])
        return -1;
    m->done[i] = 1;
    if (i > 0)
        return 0;
    while (k < m->n && m->done[k])
        k++;
    m->adv = m->off[k - 1] + 1;
    memmove(m->off, m->off + k, (size_t)(m->n - k) * sizeof(m->off[0]));
    memmove(m->done, m->done + k, (size_t)(m->n - k) * sizeof(m->done[0]));
    m->n -= k;
    return 1;
}

/* One seeded run of ops; returns the number of disagreements. */
static int model_run(uint64_t seed, int ops)
{
    lt_offsets_t *t = lt_offsets_new();
    int64_t next[MC * MP];
    int bad = 0;
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < MC * MP; i++)
        model_forget(&model[i]);
    for (int op = 0; op < ops; op++) {
        int c = (int)rnd(MC);
        int32_t p = (int32_t)rnd(MP);
        model_part_t *m = &model[c * MP + p];
        uint64_t what = rnd(100), adds = 30 + seed % 30; /* some seeds hold many */
        what = what < adds ? 0 : 40 + (what - adds) * 60 / (100 - adds);
        if (what < 40 && m->n < MMAX) { /* take a message, sometimes past a gap */
            int64_t off =
                (m->last < 0 ? (int64_t)rnd(5) : m->last + 1) + (rnd(4) == 0 ? (int64_t)rnd(3) : 0);
            model_add(m, off);
            bad += lt_offsets_add(t, c, p, off) != 0;
        } else if (what < 85) { /* finish one, mostly held, sometimes not */
            int64_t off = m->n && rnd(10) ? m->off[rnd((uint64_t)m->n)] : (int64_t)rnd(60);
            bad += lt_offsets_done(t, c, p, off) != model_done(m, off);
        } else if (what < 95) { /* store what advanced */
            int n = take_all(t, next, MC, MP);
            bad += n < 0;
            for (int i = 0; n >= 0 && i < MC * MP; i++) {
                bad += next[i] != model[i].adv;
                model[i].adv = -1;
            }
        } else if (what < 98) { /* revoked */
            model_forget(m);
            lt_offsets_forget_partition(t, c, p);
        } else if (m->last > 0) { /* redelivered from an earlier offset */
            int64_t off = (int64_t)rnd((uint64_t)m->last);
            model_add(m, off);
            bad += lt_offsets_add(t, c, p, off) != 0;
        }
        size_t held = 0;
        for (int i = 0; i < MC * MP; i++)
            held += (size_t)model[i].n;
        bad += lt_offsets_pending(t) != held;
    }
    lt_offsets_destroy(t);
    return bad;
}

LT_TEST(matches_reference_model)
{
    int bad_seeds = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        int bad = model_run(seed, 3000);
        if (bad) {
            fprintf(stderr, "seed %llu: %d disagreements\n", (unsigned long long)seed, bad);
            bad_seeds++;
        }
    }
    CHECK_INT(bad_seeds, 0);
}

int main(void)
{
    LT_RUN(in_order);
    LT_RUN(out_of_order);
    LT_RUN(gaps);
    LT_RUN(many_partitions);
    LT_RUN(hundred_thousand);
    LT_RUN(many_classes);
    LT_RUN(unfinished_blocks_only_itself);
    LT_RUN(forget_and_go_back);
    LT_RUN(failed_add_releases_nothing);
    LT_RUN(matches_reference_model);
    return LT_DONE();
}
