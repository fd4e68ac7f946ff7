"""The PostgreSQL statements of cluster mode (one place to read them all).

``NOW`` is the database clock at the instant the statement runs
(``clock_timestamp()``, not ``now()``, which is frozen for a whole transaction).
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

__all__ = ["NOW"]

NOW = "extract(epoch from clock_timestamp())"

DB_NOW: TextClause = text(f"SELECT {NOW}")

# -- membership ---------------------------------------------------------------------

REGISTER_NODE = text(f"""
INSERT INTO nodes (node_id, host, pid, campaign_id, started_at, heartbeat_at)
VALUES (:node, :host, :pid, :campaign, {NOW}, {NOW})
ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at
""")

HEARTBEAT_NODE = text(f"UPDATE nodes SET heartbeat_at = {NOW} WHERE node_id = :node")
#: renewals skip rows another transaction holds (the writer's, a settle's): no
#: deadlock, and a heartbeat comes three times per lease lifetime
RENEW_RECORDS = text(f"""
UPDATE records SET lease_expires_at = {NOW} + :ttl
WHERE pk IN (SELECT pk FROM records WHERE lease_node = :node
             AND status IN ('dialing', 'in_call') FOR UPDATE SKIP LOCKED)
""")
RENEW_SLOTS = text(f"""
UPDATE call_slots SET expires_at = {NOW} + :ttl
WHERE (campaign_id, slot) IN (SELECT campaign_id, slot FROM call_slots WHERE node_id = :node
                              FOR UPDATE SKIP LOCKED)
""")
RENEW_LEASES = text(f"UPDATE leases SET expires_at = {NOW} + :ttl WHERE node_id = :node")
LEAVE_LEASES = text("DELETE FROM leases WHERE node_id = :node")
LEAVE_NODE = text("DELETE FROM nodes WHERE node_id = :node")

# -- leadership ---------------------------------------------------------------------

#: take ``:name`` if free, expired or already ours; returns a row only on success
TAKE_LEASE = text(f"""
INSERT INTO leases AS l (name, node_id, expires_at, dry)
VALUES (:name, :node, {NOW} + :ttl, false)
ON CONFLICT (name) DO UPDATE
  SET node_id = EXCLUDED.node_id, expires_at = EXCLUDED.expires_at,
      dry = CASE WHEN l.node_id = EXCLUDED.node_id THEN l.dry ELSE false END
  WHERE l.node_id = EXCLUDED.node_id OR l.expires_at < {NOW}
RETURNING node_id
""")
MARK_DRY = text("UPDATE leases SET dry = :dry WHERE name = :name AND node_id = :node")
POLL_LEASES = text("SELECT name, dry FROM leases WHERE name LIKE :prefix")

# -- sizing tokens and slots --------------------------------------------------------

ADD_TOKENS = text("""
INSERT INTO rate_tokens (campaign_id, kind, slot, used_at)
SELECT :campaign, :kind, g, 0 FROM generate_series(0, :n - 1) AS g
ON CONFLICT DO NOTHING
""")
TRIM_TOKENS = text(
    "DELETE FROM rate_tokens WHERE campaign_id = :campaign AND kind = :kind AND slot >= :n"
)
ADD_SLOTS = text("""
INSERT INTO call_slots (campaign_id, slot)
SELECT :campaign, g FROM generate_series(0, :n - 1) AS g
ON CONFLICT DO NOTHING
""")
#: shrinking never takes a slot from a live call: a held slot goes when it is freed
TRIM_SLOTS = text(
    "DELETE FROM call_slots WHERE campaign_id = :campaign AND slot >= :n AND record_pk IS NULL"
)
LOCK_CAMPAIGN = text("SELECT id FROM campaigns WHERE id = :campaign FOR UPDATE")

# -- claiming -----------------------------------------------------------------------

#: tokens a window old, stamped now; returns each token's previous stamp (to give
#: back the ones the claim could not use, in the same transaction)
TAKE_TOKENS = text(f"""
WITH t AS (
  SELECT slot, used_at FROM rate_tokens
  WHERE campaign_id = :campaign AND kind = :kind AND used_at <= {NOW} - :age
  ORDER BY used_at LIMIT :n FOR UPDATE SKIP LOCKED)
UPDATE rate_tokens r SET used_at = {NOW}
FROM t WHERE r.campaign_id = :campaign AND r.kind = :kind AND r.slot = t.slot
RETURNING r.slot, t.used_at AS previous, r.used_at AS stamped
""")
GIVE_BACK_TOKEN = text(
    "UPDATE rate_tokens SET used_at = :previous "
    "WHERE campaign_id = :campaign AND kind = :kind AND slot = :slot"
)
#: when the oldest token of a kind comes free (database clock), for the wake-up
NEXT_TOKEN_AT = text(
    "SELECT min(used_at) + :age - " + NOW + " FROM rate_tokens "
    "WHERE campaign_id = :campaign AND kind = :kind"
)
TAKE_SLOTS = text("""
SELECT slot FROM call_slots WHERE campaign_id = :campaign AND record_pk IS NULL
ORDER BY slot LIMIT :n FOR UPDATE SKIP LOCKED
""")
HOLD_SLOT = text(f"""
UPDATE call_slots SET record_pk = :pk, node_id = :node, expires_at = {NOW} + :ttl
WHERE campaign_id = :campaign AND slot = :slot
""")
#: due records of a running campaign whose phone has no live call, locked for this
#: claim (a pause written by anyone stops admission on every node at once)
_CANDIDATES = """
SELECT {columns} FROM records r
WHERE r.campaign_id = :campaign AND r.status IN ('pending', 'scheduled')
  AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = :campaign AND c.state = 'running')
  AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= :now)
  AND r.pk <> ALL(CAST(:exclude AS integer[]))
  AND NOT EXISTS (SELECT 1 FROM records l
                  WHERE l.phone = r.phone AND l.status IN ('dialing', 'in_call'))
ORDER BY coalesce(r.next_attempt_at, 0), r.seq
LIMIT :n FOR UPDATE OF r SKIP LOCKED
"""
CANDIDATES = text(_CANDIDATES.format(columns="r.pk, r.phone"))
#: the same, with what the admission step decides on (dispatch/cluster/admit.py)
CANDIDATES_TO_DECIDE = text(_CANDIDATES.format(
    columns="r.pk, r.phone, r.source, r.id, r.payload, r.attempts"))
#: when the campaign's next waiting record comes due (hub clock), for an empty claim's
#: sleep; NULL while one is due already (a claim lost it to another node, or its phone
#: is live): the EXISTS stops at the first such row, so contention costs little
NEXT_DUE = text("""
SELECT CASE WHEN EXISTS (
  SELECT 1 FROM records WHERE campaign_id = :campaign AND status IN ('pending', 'scheduled')
    AND (next_attempt_at IS NULL OR next_attempt_at <= :now))
THEN NULL ELSE (
  SELECT min(next_attempt_at) FROM records
  WHERE campaign_id = :campaign AND status IN ('pending', 'scheduled')) END
""")

# -- admission inside the claim (dispatch/cluster/admit.py) -------------------------

#: advisory lock class of the admission step (``'dADM'``); the key is a hash
ADMIT_LOCK_CLASS = 0x6441444D
#: the phones of this claim no other claim is deciding now (transaction-scoped,
#: never waited for: a phone another node is deciding waits for the next claim)
LOCK_PHONES = text("""
SELECT p FROM unnest(CAST(:phones AS text[])) AS p
WHERE pg_try_advisory_xact_lock(:cls, hashtext(p))
""")
#: claims of a campaign with a campaign cap decide one at a time (waited for)
LOCK_CAMPAIGN_CAP = text(
    "SELECT pg_advisory_xact_lock(:cls, hashtext('campaign:' || CAST(:campaign AS text)))")
#: a deferral: not an attempt (``attempts`` unchanged), due again at the opening
DEFER_RECORD = text("""
UPDATE records SET status = 'scheduled', next_attempt_at = :next_at, updated_at = :now
WHERE pk = :pk AND status IN ('pending', 'scheduled')
""")
#: a skip: terminal, with the decision's reason and detail
SKIP_RECORD = text("""
UPDATE records SET status = 'skipped', next_attempt_at = NULL, last_reason = :reason,
  error = :error, updated_at = :now
WHERE pk = :pk AND status IN ('pending', 'scheduled')
""")

#: the compare-and-set: only a record still due and not live is taken
CLAIM = text(f"""
UPDATE records SET status = 'dialing', attempts = attempts + 1, next_attempt_at = NULL,
  lease_node = :node, lease_expires_at = {NOW} + :ttl, updated_at = :now
WHERE pk = ANY(CAST(:pks AS integer[])) AND status IN ('pending', 'scheduled')
RETURNING pk, source, id, phone, strategy, payload, attempts, last_reason, last_call_id,
  disposition, error
""")

# -- settling -----------------------------------------------------------------------

#: the record is still ours (a sweeper never took it over): lock it for the settle
OWN_RECORD = text("""
SELECT pk FROM records WHERE source = :source AND id = :id AND lease_node = :node
FOR UPDATE
""")
#: the records of a settle batch still ours, locked in key order
OWN_RECORDS = text("""
SELECT pk, source, id FROM records
WHERE (source, id) IN (SELECT * FROM unnest(CAST(:sources AS text[]), CAST(:ids AS text[])))
  AND lease_node = :node
ORDER BY pk FOR UPDATE
""")
FREE_SLOT = text("""
UPDATE call_slots SET record_pk = NULL, node_id = NULL, expires_at = NULL
WHERE campaign_id = :campaign AND record_pk = :pk
""")
DROP_LEASE = text("UPDATE records SET lease_node = NULL, lease_expires_at = NULL WHERE pk = :pk")

# -- watching -----------------------------------------------------------------------

NOTIFY = text("SELECT pg_notify(:channel, :campaign)")

ACTIVE_COUNT = text("""
SELECT count(*) FROM records
WHERE campaign_id = :campaign AND status IN ('pending', 'scheduled', 'dialing', 'in_call')
""")

# -- sweeping -----------------------------------------------------------------------

#: live records whose holder's lease ran out: taken over by the sweeper
TAKE_EXPIRED = text(f"""
WITH e AS (
  SELECT pk FROM records
  WHERE campaign_id = :campaign AND status IN ('dialing', 'in_call')
    AND lease_expires_at < {NOW}
  LIMIT :n FOR UPDATE SKIP LOCKED)
UPDATE records r SET lease_node = :node, lease_expires_at = {NOW} + :ttl
FROM e WHERE r.pk = e.pk
RETURNING r.pk, r.source, r.id, r.phone, r.payload, r.status, r.attempts, r.last_call_id,
  r.requeue_count
""")
LATEST_ATTEMPT = text("""
SELECT call_id, answered_at FROM attempts
WHERE record_pk = :pk AND attempt_no = :no AND requeue_round = :round
""")
SETTLE_SWEPT_RECORD = text("""
UPDATE records SET status = :status, next_attempt_at = :next_at, last_reason = :reason,
  last_call_id = coalesce(:call_id, last_call_id), error = :error, updated_at = :now,
  lease_node = NULL, lease_expires_at = NULL
WHERE pk = :pk AND lease_node = :node
""")
SETTLE_SWEPT_ATTEMPT = text("""
UPDATE attempts SET ended_at = :ended_at, reason = :reason, raw_reason = :raw,
  call_id = coalesce(call_id, :call_id), answered_at = coalesce(answered_at, :answered_at),
  duration_s = coalesce(:duration_s, duration_s),
  error = CASE WHEN CAST(:note AS text) IS NULL THEN error
               WHEN error IS NULL THEN CAST(:note AS text)
               ELSE error || '; ' || CAST(:note AS text) END
WHERE record_pk = :pk AND attempt_no = :no AND requeue_round = :round AND ended_at IS NULL
""")
#: slots whose record is no longer live (its settle and the free are one transaction,
#: so this only finds slots of a claim rolled back by hand or a trimmed campaign)
FREE_ORPHAN_SLOTS = text("""
UPDATE call_slots s SET record_pk = NULL, node_id = NULL, expires_at = NULL
WHERE s.campaign_id = :campaign AND s.record_pk IS NOT NULL AND NOT EXISTS (
  SELECT 1 FROM records r WHERE r.pk = s.record_pk AND r.status IN ('dialing', 'in_call'))
""")
