/* lt_offsets: which offset a consumer may store, per partition, when its
 * messages finish out of order.
 *
 * A consumer hands each message it takes to lt_offsets_add and each message
 * it has finished (its output acknowledged) to lt_offsets_done. The offset
 * to store for a partition is the one after its finished prefix: the longest
 * run of finished messages from the oldest one still held. A message that
 * never finishes holds back its own partition only, so a crash redelivers
 * it and everything after it, never skips it.
 *
 * Partitions are grouped in classes: a topic, or a consumer (the fetcher's
 * live and backfill consumers are classes 0 and 1). Classes and partitions
 * are small non-negative integers, dense as Kafka's partitions are; memory
 * grows with the highest of each and with the messages held, with no fixed
 * limit. Each partition keeps its held offsets in an ordered ring: adding,
 * and finishing in order, are amortised O(1); finishing out of order finds
 * the message by binary search.
 *
 * Not thread-safe: one owner thread (or the owner's lock) for every call.
 * Errors: a failed lt_offsets_add (out of memory, or an argument no consumer
 * produces) leaves the tracker unable to release anything again, the safe
 * side: nothing more is stored, every unfinished message is redelivered
 * after a restart; callers should stop. */
#ifndef LT_OFFSETS_H
#define LT_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct lt_offsets_s lt_offsets_t;

/* NULL when out of memory. */
lt_offsets_t *lt_offsets_new(void);
void lt_offsets_destroy(lt_offsets_t *t); /* accepts NULL */

/* A message taken. Offsets of a partition come in increasing order, as a
 * consumer delivers them (gaps are fine: compaction, transaction markers).
 * An offset at or below the last one added means the consumer went back (a
 * rebalance returned the partition, a seek): the partition's held messages
 * and its untaken advance are forgotten first, as they come again. 0, or -1
 * (see Errors above). */
int lt_offsets_add(lt_offsets_t *t, int cls, int32_t partition, int64_t offset);

/* A message finished. 1 when its partition's finished prefix advanced: the
 * new offset to store waits in lt_offsets_take. 0 when an older message of
 * the partition is still unfinished. -1 when the offset is not held (never
 * added, finished already, or forgotten): nothing changes. */
int lt_offsets_done(lt_offsets_t *t, int cls, int32_t partition, int64_t offset);

/* One partition whose finished prefix advanced since it was last taken: 1
 * with *cls, *partition and *next, the offset to store (the one after the
 * prefix's last message); 0 when none is left (or after a failed add). Each
 * partition comes at most once per take round, with its latest offset, so a
 * caller that finishes a batch stores once per partition. */
int lt_offsets_take(lt_offsets_t *t, int *cls, int32_t *partition, int64_t *next);

/* Messages held: added and not yet released (unfinished, or finished behind
 * an unfinished one of their partition). */
size_t lt_offsets_pending(const lt_offsets_t *t);

/* Forgets a partition's held messages and untaken advance (the partition
 * was revoked: its messages are another consumer's now). Later done calls
 * for them return -1. */
void lt_offsets_forget_partition(lt_offsets_t *t, int cls, int32_t partition);

#endif
