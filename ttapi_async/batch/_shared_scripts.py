"""The shared batch's Lua scripts: every read-decide-write on an item is one atomic script.

Each script gets one key, the batch's base (``ttapi:{<namespace>.<account>}:batch:<name>``),
and derives the others from it (one hash tag: one cluster slot). Times come from Redis's
``TIME``, never a machine's clock.

Keys under the base: ``:meta`` (hash: input hash, total, version), ``:ids`` (list: item
ids in input order), ``:fp`` (hash: id -> request fingerprint), ``:stems`` (hash: stem key
-> id), ``:item:<id>`` (hash: the item's row), ``:stream`` (the hand-out stream, consumer
group ``runners``; an entry holds one item id), ``:runners`` (set of runners not yet taken
over), ``:gone`` (set of runners taken over: fenced), ``:alive:<runner>`` (heartbeat key,
expires), ``:held:<runner>`` (set of item ids a runner holds), ``:taker`` (the takeover
lock, ``SET NX PX``), ``:plan`` (the planning lock).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BEAT",
    "CLAIM",
    "END",
    "GROUP",
    "HANDOUT",
    "NOTE",
    "PENDING",
    "REPLAN",
    "REQUEUE",
    "SUBMITTED",
    "TAKEOVER",
]

#: The consumer group every runner reads the stream through.
GROUP: Final = "runners"

_NOW = """
local function now()
  local t = redis.call('TIME')
  return string.format('%.3f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
end
local base = KEYS[1]
local function item_key(id) return base .. ':item:' .. id end
"""

#: HANDOUT(me, count): read up to ``count`` new entries for ``me``; keep those whose item is
#: pending and held by nobody else (the runner becomes its holder); ack stale ones. A runner
#: that was taken over gets nothing.
HANDOUT: Final = (
    _NOW
    + """
local me, count = ARGV[1], tonumber(ARGV[2])
local out = {}
if redis.call('SISMEMBER', base .. ':gone', me) == 1 then return out end
local got = redis.call('XREADGROUP', 'GROUP', 'runners', me, 'COUNT', count,
                       'STREAMS', base .. ':stream', '>')
if not got then return out end
for _, entry in ipairs(got[1][2]) do
  local eid, id = entry[1], entry[2][2]
  local key = item_key(id)
  local st = redis.call('HMGET', key, 'state', 'runner')
  if st[1] == 'pending' and (st[2] == false or st[2] == '' or st[2] == me) then
    redis.call('HSET', key, 'runner', me, 'entry', eid)
    redis.call('SADD', base .. ':held:' .. me, id)
    table.insert(out, redis.call('HGETALL', key))
  else
    redis.call('XACK', base .. ':stream', 'runners', eid)
  end
end
return out
"""
)

#: CLAIM(id, me): pending -> submitting, only for the item's holder, never for a runner that
#: was taken over. Returns 1 or 0.
CLAIM: Final = (
    _NOW
    + """
local key, me = item_key(ARGV[1]), ARGV[2]
local st = redis.call('HMGET', key, 'state', 'runner', 'started_at')
if st[1] ~= 'pending' or st[2] ~= me then return 0 end
if redis.call('SISMEMBER', base .. ':gone', me) == 1 then return 0 end
local t = now()
redis.call('HSET', key, 'state', 'submitting', 'error', '', 'updated_at', t)
if st[3] == false or st[3] == '' then redis.call('HSET', key, 'started_at', t) end
redis.call('HINCRBY', key, 'submits', 1)
return 1
"""
)

#: SUBMITTED(id, me, job_id): record the job id before anyone waits. 1: recorded;
#: 2: recorded although a taker had marked it unknown meanwhile (the runner was slow, not
#: dead: the job id is better knowledge; if it was taken over, it joins the runners again,
#: heartbeat-less, so that the next taker resumes the job); 0: the item is someone else's.
SUBMITTED: Final = (
    _NOW
    + """
local key, me, job = item_key(ARGV[1]), ARGV[2], ARGV[3]
local st = redis.call('HMGET', key, 'state', 'runner')
local t = now()
if st[1] == 'submitting' and st[2] == me then
  redis.call('HSET', key, 'state', 'submitted', 'job_id', job, 'submitted_at', t, 'updated_at', t)
  return 1
end
if st[1] == 'unknown' then
  redis.call('HSET', key, 'state', 'submitted', 'job_id', job, 'submitted_at', t,
             'updated_at', t, 'runner', me, 'error', '', 'finished_at', '')
  redis.call('SADD', base .. ':held:' .. me, ARGV[1])
  if redis.call('SISMEMBER', base .. ':gone', me) == 1 then
    redis.call('SADD', base .. ':runners', me)  -- taken over already: the next taker resumes it
  end
  return 2
end
return 0
"""
)

#: PENDING(id, me, error): submitting -> pending (refused, certainly not acted on).
PENDING: Final = (
    _NOW
    + """
local key, me = item_key(ARGV[1]), ARGV[2]
local st = redis.call('HMGET', key, 'state', 'runner')
if st[1] ~= 'submitting' or st[2] ~= me then return 0 end
redis.call('HSET', key, 'state', 'pending', 'error', ARGV[3], 'updated_at', now())
return 1
"""
)

#: END(id, me, state, error, files, quota, usage, out, host): the first ending wins. The
#: one who settles is recorded with its folder and host; the item leaves every holder and
#: its stream entry is acknowledged. Returns 1, or 0 when it had ended already.
END: Final = (
    _NOW
    + """
local id, me, state = ARGV[1], ARGV[2], ARGV[3]
local key = item_key(id)
local st = redis.call('HMGET', key, 'state', 'runner', 'entry')
if st[1] == false or st[1] == 'done' or st[1] == 'failed' or st[1] == 'unknown' then
  return 0
end
local t = now()
redis.call('HSET', key, 'state', state, 'error', ARGV[4], 'files', ARGV[5], 'quota', ARGV[6],
           'usage', ARGV[7], 'out', ARGV[8], 'host', ARGV[9], 'runner', me,
           'finished_at', t, 'updated_at', t, 'entry', '')
redis.call('SREM', base .. ':held:' .. me, id)
if st[2] and st[2] ~= '' and st[2] ~= me then
  redis.call('SREM', base .. ':held:' .. st[2], id)
end
if st[3] and st[3] ~= '' then redis.call('XACK', base .. ':stream', 'runners', st[3]) end
return 1
"""
)

#: NOTE(id, error): record a problem without changing the state.
NOTE: Final = (
    _NOW
    + """
local key = item_key(ARGV[1])
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'error', ARGV[2], 'updated_at', now())
return 1
"""
)

#: BEAT(me, ttl_ms): -1 if ``me`` was taken over (fenced); else renew its heartbeat key.
BEAT: Final = (
    _NOW
    + """
local me = ARGV[1]
if redis.call('SISMEMBER', base .. ':gone', me) == 1 then return -1 end
redis.call('SET', base .. ':alive:' .. me, now(), 'PX', tonumber(ARGV[2]))
redis.call('SADD', base .. ':runners', me)
return 1
"""
)

#: TAKEOVER(me, lock_ms, resubmit_unknown): with the takeover lock (one taker at a time),
#: take over every runner whose heartbeat key expired: ``submitted`` items become the
#: taker's (returned, to resume by job id), ``pending`` ones are queued again, and
#: ``submitting`` ones become ``unknown`` (queued again only with resubmit_unknown; the
#: taker reports them, once). Returns {-1} without the lock, else {requeued, n, the n
#: unknown rows..., the submitted rows...}.
TAKEOVER: Final = (
    _NOW
    + """
local me, lock_ms, resubmit = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local lock = base .. ':taker'
if not redis.call('SET', lock, me, 'NX', 'PX', lock_ms) then
  if redis.call('GET', lock) ~= me then return {-1} end
  redis.call('PEXPIRE', lock, lock_ms)
end
local stream = base .. ':stream'
local requeued, unknown, out = 0, {}, {}
local t = now()
for _, r in ipairs(redis.call('SMEMBERS', base .. ':runners')) do
  if r ~= me and redis.call('EXISTS', base .. ':alive:' .. r) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', base .. ':held:' .. r)) do
      local key = item_key(id)
      local st = redis.call('HMGET', key, 'state', 'runner', 'entry')
      if st[2] == r then
        if st[3] and st[3] ~= '' then redis.call('XACK', stream, 'runners', st[3]) end
        if st[1] == 'submitted' then
          redis.call('HSET', key, 'runner', me, 'entry', '', 'updated_at', t)
          redis.call('SADD', base .. ':held:' .. me, id)
          table.insert(out, redis.call('HGETALL', key))
        elseif st[1] == 'pending' or (st[1] == 'submitting' and resubmit) then
          redis.call('HSET', key, 'state', 'pending', 'runner', '', 'entry', '', 'updated_at', t)
          redis.call('XADD', stream, '*', 'id', id)
          requeued = requeued + 1
        elseif st[1] == 'submitting' then
          redis.call('HSET', key, 'state', 'unknown', 'entry', '', 'finished_at', t,
                     'updated_at', t, 'error',
                     'runner ' .. r .. ' died while submitting: the request may have reached '
                     .. 'the service')
          table.insert(unknown, redis.call('HGETALL', key))
        end
      end
    end
    redis.call('DEL', base .. ':held:' .. r)
    redis.call('SREM', base .. ':runners', r)
    redis.call('SADD', base .. ':gone', r)
    redis.call('XGROUP', 'DELCONSUMER', stream, 'runners', r)
  end
end
local result = {requeued, #unknown}
for _, row in ipairs(unknown) do table.insert(result, row) end
for _, row in ipairs(out) do table.insert(result, row) end
return result
"""
)

#: REQUEUE(first, last, failed, unknown): items at positions first..last of the input in
#: ended states asked for go back to pending and into the stream. Returns how many.
REQUEUE: Final = (
    _NOW
    + """
local failed, unknown = ARGV[3] == '1', ARGV[4] == '1'
local n = 0
local t = now()
for _, id in ipairs(redis.call('LRANGE', base .. ':ids', tonumber(ARGV[1]), tonumber(ARGV[2]))) do
  local key = item_key(id)
  local state = redis.call('HGET', key, 'state')
  if (state == 'failed' and failed) or (state == 'unknown' and unknown) then
    redis.call('HSET', key, 'state', 'pending', 'runner', '', 'entry', '', 'job_id', '',
               'error', '', 'files', '', 'finished_at', '', 'updated_at', t)
    redis.call('XADD', base .. ':stream', '*', 'id', id)
    n = n + 1
  end
end
return n
"""
)

#: REPLAN(me, n, n x (id, kind, params, fp), removed ids...): the re-plan ``force`` makes,
#: only while no other runner is live (its heartbeat key exists). Changed items start
#: again as pending (out of any holder, queued again), removed ones are forgotten. Returns
#: {-1, ms until the last live one's key expires (-1: no expiry), its id...} having changed
#: nothing, else {changed, removed}. The check and the change are one script: a runner
#: beating after it only ever sees the new input (a runner's first beat comes before it is
#: handed anything, so none can be claiming an item of the old input unseen here).
REPLAN: Final = (
    _NOW
    + """
local me, n = ARGV[1], tonumber(ARGV[2])
local live, wait = {}, 0
for _, r in ipairs(redis.call('SMEMBERS', base .. ':runners')) do
  if r ~= me then
    local left = redis.call('PTTL', base .. ':alive:' .. r)
    if left ~= -2 then
      table.insert(live, r)
      if left < 0 or wait < 0 then wait = -1 elseif left > wait then wait = left end
    end
  end
end
if #live > 0 then
  local out = {-1, wait}
  for _, r in ipairs(live) do table.insert(out, r) end
  return out
end
local stream = base .. ':stream'
local function unhold(id, key)
  local st = redis.call('HMGET', key, 'runner', 'entry')
  if st[1] and st[1] ~= '' then redis.call('SREM', base .. ':held:' .. st[1], id) end
  if st[2] and st[2] ~= '' then redis.call('XACK', stream, 'runners', st[2]) end
end
local t = now()
for i = 0, n - 1 do
  local at = 3 + 4 * i
  local id, fp = ARGV[at], ARGV[at + 3]
  local key = item_key(id)
  unhold(id, key)
  redis.call('HSET', key, 'kind', ARGV[at + 1], 'params', ARGV[at + 2], 'fp', fp,
             'state', 'pending', 'runner', '', 'entry', '', 'job_id', '', 'error', '',
             'files', '', 'quota', '', 'usage', '', 'started_at', '', 'submitted_at', '',
             'finished_at', '', 'updated_at', t)
  redis.call('HSET', base .. ':fp', id, fp)
  redis.call('XADD', stream, '*', 'id', id)
end
local gone, removed = {}, 0
for j = 3 + 4 * n, #ARGV do
  local id = ARGV[j]
  local key = item_key(id)
  unhold(id, key)
  redis.call('DEL', key)
  redis.call('HDEL', base .. ':fp', id)
  gone[id] = true
  removed = removed + 1
end
if removed > 0 then
  local ids = base .. ':ids'
  local kept, chunk = redis.call('LRANGE', ids, 0, -1), {}
  redis.call('DEL', ids)
  for _, id in ipairs(kept) do
    if not gone[id] then
      table.insert(chunk, id)
      if #chunk == 1000 then
        redis.call('RPUSH', ids, unpack(chunk))
        chunk = {}
      end
    end
  end
  if #chunk > 0 then redis.call('RPUSH', ids, unpack(chunk)) end
end
return {n, removed}
"""
)
