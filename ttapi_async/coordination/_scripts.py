"""The Lua scripts: every read-decide-write on shared state is one script, so it is atomic.

Each script gets ``KEYS[1]`` (the namespace's clock-offset key, absent outside tests) and
``ARGV[1]`` (the namespace's key prefix). Time is Redis's own (``TIME``), never a
machine's: machines' clocks disagree, one server's does not. Keys a script derives share
the prefix's hash tag, so they all live in one cluster slot.
"""

from __future__ import annotations

from .._aimd import BAND, MAX_BACKOFF

__all__ = [
    "ACQUIRE",
    "CLAIM",
    "CLAIM_RECORD",
    "HEARTBEAT",
    "PAUSE",
    "RATE",
    "REFUSED",
    "RELEASE",
    "RELEASE_CLAIM",
    "RETIRE",
    "SETTLE",
    "SUBMITTED",
    "SWEEP",
    "UNQUEUE",
]

_HEADER = (
    f"local MAX_BACKOFF, BAND = {MAX_BACKOFF}, {BAND}\n"
    + """
local P = ARGV[1]
local function k(...) return P .. table.concat({...}, ':') end
local function now_ms()
  local t = redis.call('TIME')
  local offset = tonumber(redis.call('GET', KEYS[1]) or '0')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + offset
end
local function limit_of(product, initial)
  local h = k('limit', product)
  if redis.call('EXISTS', h) == 0 then
    redis.call('HSET', h, 'limit', initial, 'slow', 1, 'epoch', 0, 'credit', 0, 'accepted', 0)
  end
  return h
end
-- how far from a ceiling another level is another ceiling (Aimd's _moved)
local function moved(ceiling) return math.max(1, BAND * ceiling) end
local function current(h, cap, minimum)
  local limit = tonumber(redis.call('HGET', h, 'limit'))
  return math.max(minimum, math.min(cap, math.floor(limit)))
end
-- Unbound leases (taken, submit not answered yet) start with '~'; bound ones are job ids.
local function drop(product, member)
  local owners = k('lease-owner', product)
  local owner = redis.call('HGET', owners, member)
  if redis.call('ZREM', k('leases', product), member) == 0 then return 0 end
  redis.call('HDEL', owners, member)
  if owner then redis.call('SREM', k('wleases', owner), product .. '|' .. member) end
  if string.sub(member, 1, 1) ~= '~' then
    redis.call('HINCRBY', k('limit', product), 'accepted', -1)
  end
  return 1
end
local function reap(product, now)
  local gone = redis.call('ZRANGEBYSCORE', k('leases', product), '-inf', now)
  for _, member in ipairs(gone) do drop(product, member) end
end
local function hold(product, member, owner, expiry)
  redis.call('ZADD', k('leases', product), expiry, member)
  redis.call('HSET', k('lease-owner', product), member, owner)
  redis.call('SADD', k('wleases', owner), product .. '|' .. member)
end
-- Tell a job's owner, when it is another worker, what became of the job (a callback or a
-- fetch reaching the owner too then does nothing twice). ``message`` may be a function:
-- it is built only when there is someone to tell (SETTLE's carries the whole record).
local function tell_owner(job, me, message)
  local owner = redis.call('HGET', k('job', job), 'owner')
  if owner and owner ~= '' and owner ~= me then
    if type(message) == 'function' then message = message() end
    redis.call('PUBLISH', k('wake', owner), message)
  end
end
-- Take the one confirming-fetch claim of a job (SET NX PX) and tell its owner, so that a
-- callback reaching the owner too makes no second fetch; false when another holds it.
local function take_claim(job, me, ttl_ms)
  if not redis.call('SET', k('confirm', job), me, 'NX', 'PX', ttl_ms) then return false end
  tell_owner(job, me, 'claim\\n' .. job)
  return true
end
-- A waiter leaves the queue: its entry goes; the list keeps it until a grant pops it.
local function unqueue(product, worker, token)
  redis.call('SREM', k('wqueued', worker), product .. '|' .. token)
  return redis.call('HDEL', k('queued', product), worker .. '|' .. token)
end
-- Hand free slots to the oldest live waiters, one each, and tell each one's worker: a
-- freed lease wakes one waiter, not every worker's. The lease is taken in the waiter's
-- name (its token), so the waiter needs no round trip to have it.
local function grant(product, now)
  local h = k('limit', product)
  local settings = redis.call('HMGET', h, 'cap', 'min', 'ttl', 'epoch')
  if not settings[1] then return end
  local cur = current(h, tonumber(settings[1]), tonumber(settings[2]))
  local leases, queue, queued = k('leases', product), k('queue', product), k('queued', product)
  local held = redis.call('ZCARD', leases)
  if held >= cur then return end
  local wait = math.max(0, tonumber(redis.call('GET', k('pause')) or '0') - now)
  local tail = '\\n' .. product .. '|' .. settings[4] .. '|' .. wait .. '|' .. cur
  while held < cur do
    local entry = redis.call('LPOP', queue)
    if not entry then return end
    local until_ms = tonumber(redis.call('HGET', queued, entry) or '0')
    if until_ms > 0 then
      local worker, token = string.match(entry, '^(.-)|(.*)$')
      unqueue(product, worker, token)
      if until_ms > now then
        hold(product, token, worker, now + tonumber(settings[3]))
        held = held + 1
        redis.call('PUBLISH', k('wake', worker), 'grant\\n' .. token .. tail)
      end
    end
  end
end
"""
)

#: ARGV: P, me, product, member, ttl_ms, cap, initial, minimum, queue_ms (0: take or refuse)
#: -> {ok, wait_ms, epoch, current limit, leases still free}; wait_ms -1: queued (or full);
#: ok with wait_ms > 0: a granted lease, to use once the pause ends
ACQUIRE = (
    _HEADER
    + """
local me, product, member = ARGV[2], ARGV[3], ARGV[4]
local ttl, cap, initial, minimum = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local queue_ms = tonumber(ARGV[9])
local now = now_ms()
local h = limit_of(product, initial)
-- what grant() needs when a release elsewhere hands a slot out
redis.call('HSET', h, 'cap', cap, 'min', minimum, 'ttl', ttl)
reap(product, now)
grant(product, now)
local epoch = tonumber(redis.call('HGET', h, 'epoch'))
local cur = current(h, cap, minimum)
local pause = tonumber(redis.call('GET', k('pause')) or '0')
local held = redis.call('ZCARD', k('leases', product))
-- granted while its push was on the way (or lost): the caller waits out any pause
if redis.call('HGET', k('lease-owner', product), member) == me then
  return {1, math.max(0, pause - now), epoch, cur, math.max(0, cur - held)}
end
if pause > now then return {0, pause - now, epoch, cur, 0} end
-- grant() served every live waiter first: a slot still free is nobody's turn
if held < cur then
  hold(product, member, me, now + ttl)
  return {1, 0, epoch, cur, cur - held - 1}
end
if queue_ms > 0 then
  local entry = me .. '|' .. member
  local queued = k('queued', product)
  if redis.call('HSET', queued, entry, now + queue_ms) == 1 then
    redis.call('RPUSH', k('queue', product), entry)
    redis.call('SADD', k('wqueued', me), product .. '|' .. member)
  end
end
return {0, -1, epoch, cur, 0}
"""
)

#: ARGV: P, me, product, member -> 1 if a lease granted to it was given back
UNQUEUE = (
    _HEADER
    + """
local me, product, member = ARGV[2], ARGV[3], ARGV[4]
if unqueue(product, me, member) == 1 then return 0 end
if redis.call('HGET', k('lease-owner', product), member) ~= me then return 0 end
drop(product, member)
grant(product, now_ms())
return 1
"""
)

#: ARGV: P, me, product, member -> 1 if this worker held it and it is now free
RELEASE = (
    _HEADER
    + """
local me, product, member = ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', k('lease-owner', product), member) ~= me then return 0 end
drop(product, member)
grant(product, now_ms())
return 1
"""
)

#: ARGV: P, me, product, member, epoch, retry_ms, queue_full, decrease, cap, initial, minimum
REFUSED = (
    _HEADER
    + """
local me, product, member, epoch = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local retry, queue_full, decrease = tonumber(ARGV[6]), ARGV[7] == '1', tonumber(ARGV[8])
local cap, initial, minimum = tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11])
local now = now_ms()
if retry > 0 then
  local until_ms = math.max(tonumber(redis.call('GET', k('pause')) or '0'), now + retry)
  redis.call('SET', k('pause'), until_ms, 'PX', math.ceil(until_ms - now) + 1)
end
local h = limit_of(product, initial)
if tonumber(redis.call('HGET', h, 'epoch')) == epoch then
  redis.call('HINCRBY', h, 'epoch', 1)
  local base = tonumber(redis.call('HGET', h, 'limit'))
  if queue_full then
    -- a 499 says the service holds as many jobs as it allows: the accepted ones
    local accepted = math.max(tonumber(redis.call('HGET', h, 'accepted')), 1)
    base = math.min(base, accepted)
  end
  -- Aimd.shrink (ttapi_async/_aimd.py): a refusal at the last one's level backs probing off
  local ceiling = tonumber(redis.call('HGET', h, 'ceiling') or '0')
  local probes = tonumber(redis.call('HGET', h, 'probes') or '0')
  local level = math.floor(base)
  if ceiling > 0 and math.abs(level - ceiling) <= moved(ceiling) then
    probes = math.min(probes + 1, 16)
    ceiling = 0.75 * ceiling + 0.25 * level
  else
    probes = 0
    ceiling = level
  end
  redis.call('HSET', h, 'slow', 0, 'credit', 0, 'ceiling', tostring(ceiling), 'probes', probes,
    'limit', tostring(math.max(minimum, base * decrease)))
end
if redis.call('HGET', k('lease-owner', product), member) == me then drop(product, member) end
grant(product, now)
return current(h, cap, minimum)
"""
)

#: ARGV: P, me, job, kind, product, member, age_ms, keep_ms, ttl_ms, cap, initial, grow_every
#: -> {1, now} recorded, {0, now} already recorded, {-1, now} this worker is fenced
SUBMITTED = (
    _HEADER
    + """
local me, job, kind, product, member = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local age, keep, ttl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local cap, initial, grow_every = tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12])
local now = now_ms()
if redis.call('ZSCORE', k('dead'), me) then return {-1, now} end
local rec = k('job', job)
if product ~= '' and member ~= '' then
  if redis.call('HGET', k('lease-owner', product), member) == me then drop(product, member) end
end
if redis.call('EXISTS', rec) == 1 then return {0, now} end
redis.call('HSET', rec, 'owner', me, 'kind', kind, 'product', product,
  'submitted_ms', now - age, 'status', 'pending')
redis.call('PEXPIRE', rec, keep)
redis.call('SADD', k('owned', me), job)
-- an owner must be visible to the sweeper, even before its first beat
redis.call('ZADD', k('workers'), 'NX', now, me)
if product ~= '' then
  -- the service accepted it: it counts against the limit until it ends, however it ends
  hold(product, job, me, now + ttl)
  redis.call('HSET', rec, 'leased', 1)
  local h = limit_of(product, initial)
  redis.call('HINCRBY', h, 'accepted', 1)
  local limit = tonumber(redis.call('HGET', h, 'limit'))
  if limit < cap then
    -- Aimd.grow (ttapi_async/_aimd.py): probes above the last refusal's level wait longer
    local grown = limit
    local ceiling = tonumber(redis.call('HGET', h, 'ceiling') or '0')
    if redis.call('HGET', h, 'slow') == '1' then
      grown = limit + 1
    else
      local need = grow_every
      if ceiling > 0 and math.floor(limit) >= ceiling - moved(ceiling) then
        local probes = tonumber(redis.call('HGET', h, 'probes') or '0')
        need = need * math.min(MAX_BACKOFF, 2 ^ (probes + 1))
      end
      if redis.call('HINCRBY', h, 'credit', 1) >= need then
        redis.call('HSET', h, 'credit', 0)
        grown = limit + 1
      end
    end
    grown = math.min(cap, grown)
    redis.call('HSET', h, 'limit', tostring(grown))
    if ceiling > 0 and grown > limit and math.floor(grown) >= ceiling + 2 * moved(ceiling) then
      redis.call('HSET', h, 'ceiling', 0, 'probes', 0)  -- above it with no refusal: it moved
    end
    -- a whole slot more: the next waiter may have it now
    if math.floor(grown) > math.floor(limit) then grant(product, now) end
  end
end
return {1, now}
"""
)

#: ARGV: P, me, job, status, answer, keep_ms -> {won, field, value, ...} (the record after)
SETTLE = (
    _HEADER
    + """
local me, job, status, answer, keep = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local now = now_ms()
local rec = k('job', job)
local settled = redis.call('HGET', rec, 'settled_ms')
local function reply(won)
  local out = {won}
  for _, v in ipairs(redis.call('HGETALL', rec)) do table.insert(out, v) end
  return out
end
if settled then return reply(0) end
if redis.call('EXISTS', rec) == 0 then
  redis.call('HSET', rec, 'owner', '', 'kind', '', 'product', '', 'submitted_ms', now)
end
redis.call('HSET', rec, 'status', status, 'answer', answer, 'settled_ms', now)
redis.call('PEXPIRE', rec, keep)
local owner = redis.call('HGET', rec, 'owner')
if owner ~= '' then redis.call('SREM', k('owned', owner), job) end
if redis.call('HGET', rec, 'leased') == '1' then
  local product = redis.call('HGET', rec, 'product')
  redis.call('HSET', rec, 'leased', 0)
  drop(product, job)
  grant(product, now)
end
-- the record itself rides on the wake-up: the owner resolves without reading it back
tell_owner(job, me, function()
  local fields = {}
  local flat = redis.call('HGETALL', rec)
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  return 'settled\\n' .. job .. '\\n' .. cjson.encode(fields)
end)
return reply(1)
"""
)

#: ARGV: P, me, job, ttl_ms -> 1 if this worker may make the confirming fetch
CLAIM = (
    _HEADER
    + """
if take_claim(ARGV[3], ARGV[2], tonumber(ARGV[4])) then return 1 end
return 0
"""
)

#: ARGV: P, me, job, ttl_ms -> {claimed, field, value, ...}: the record, and 1 if this worker
#: may make the confirming fetch; {} when no worker recorded the job
CLAIM_RECORD = (
    _HEADER
    + """
local me, job = ARGV[2], ARGV[3]
local rec = k('job', job)
local flat = redis.call('HGETALL', rec)
if #flat == 0 then return {} end
local reply = {0}
for i = 1, #flat do reply[i + 1] = flat[i] end
-- a settled job needs no confirming fetch: its owner was told when it settled
local settled = redis.call('HEXISTS', rec, 'settled_ms') == 1
if not settled and take_claim(job, me, tonumber(ARGV[4])) then reply[1] = 1 end
return reply
"""
)

#: ARGV: P, me, job -> 1 if the claim was this worker's and is gone
RELEASE_CLAIM = (
    _HEADER
    + """
local me, job = ARGV[2], ARGV[3]
local key = k('confirm', job)
if redis.call('GET', key) ~= me then return 0 end
redis.call('DEL', key)
tell_owner(job, me, 'unclaim\\n' .. job)
return 1
"""
)

#: ARGV: P, me -> the number of leases freed
RETIRE = (
    _HEADER
    + """
local me = ARGV[2]
local mine = k('wleases', me)
local freed, products = 0, {}
for _, entry in ipairs(redis.call('SMEMBERS', mine)) do
  local product, member = string.match(entry, '^(.-)|(.*)$')
  -- unbound: no job the service runs holds it; a bound one stays until its job is adopted
  if string.sub(member, 1, 1) == '~' and redis.call('HGET', k('lease-owner', product), member) == me
  then
    freed = freed + drop(product, member)
    products[product] = true
  end
end
-- and its place in every queue
for _, entry in ipairs(redis.call('SMEMBERS', k('wqueued', me))) do
  local product, member = string.match(entry, '^(.-)|(.*)$')
  unqueue(product, me, member)
end
local now = now_ms()
for product in pairs(products) do grant(product, now) end
if redis.call('SCARD', k('owned', me)) > 0 then
  -- its pending jobs are for the others: the next sweep adopts them, without the deadline
  redis.call('ZADD', k('workers'), 0, me)
else
  redis.call('ZREM', k('workers'), me)
  redis.call('DEL', mine)
end
return freed
"""
)

#: ARGV: P, me, ttl_ms, deadline_ms -> {1, now, live workers} alive, {-1, now, 0} fenced
HEARTBEAT = (
    _HEADER
    + """
local me, ttl, deadline = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
if redis.call('ZSCORE', k('dead'), me) then return {-1, now, 0} end
redis.call('ZADD', k('workers'), now, me)
local mine = k('wleases', me)
for _, entry in ipairs(redis.call('SMEMBERS', mine)) do
  local product, member = string.match(entry, '^(.-)|(.*)$')
  local leases = k('leases', product)
  if redis.call('ZSCORE', leases, member) then
    redis.call('ZADD', leases, now + ttl, member)
  else
    redis.call('SREM', mine, entry)
  end
end
-- keep this worker's places in the queues; hand out what expired leases left free
local products = {}
for _, entry in ipairs(redis.call('SMEMBERS', k('wqueued', me))) do
  local product, member = string.match(entry, '^(.-)|(.*)$')
  local queued, place = k('queued', product), me .. '|' .. member
  if redis.call('HEXISTS', queued, place) == 1 then
    redis.call('HSET', queued, place, now + deadline)
    products[product] = true
  else
    redis.call('SREM', k('wqueued', me), entry)
  end
end
for product in pairs(products) do
  reap(product, now)
  grant(product, now)
end
return {1, now, redis.call('ZCOUNT', k('workers'), now - deadline, '+inf')}
"""
)

#: ARGV: P, me, deadline_ms, ttl_ms, lock_ms, keep_ms
#: -> {now, job, kind, product, submitted_ms, from, ...} or {-1} if this worker is fenced
SWEEP = (
    _HEADER
    + """
local me, deadline, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lock_ms, keep = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
if redis.call('ZSCORE', k('dead'), me) then return {-1} end
local out = {now}
-- one sweeper at a time: the others skip their sweep until the lock (on this clock) ends
local lock = redis.call('GET', k('sweeper'))
if lock then
  local holder, until_ms = string.match(lock, '^(.-)|(.*)$')
  if holder ~= me and tonumber(until_ms) > now then return out end
end
redis.call('SET', k('sweeper'), me .. '|' .. (now + lock_ms), 'PX', lock_ms)
local workers = k('workers')
for _, w in ipairs(redis.call('ZRANGEBYSCORE', workers, '-inf', now - deadline)) do
  if w ~= me then
    redis.call('ZREM', workers, w)
    redis.call('ZADD', k('dead'), now, w)
    local owned = k('owned', w)
    for _, job in ipairs(redis.call('SMEMBERS', owned)) do
      local rec = k('job', job)
      local f = redis.call('HMGET', rec, 'owner', 'kind', 'product', 'submitted_ms', 'settled_ms',
        'leased')
      -- compare-and-set on the owner: only a job still the dead worker's changes hands
      if f[1] == w and not f[5] then
        redis.call('HSET', rec, 'owner', me, 'adopted_from', w)
        redis.call('SADD', k('owned', me), job)
        if f[6] == '1' then
          if not redis.call('ZSCORE', k('leases', f[3]), job) then
            redis.call('HINCRBY', k('limit', f[3]), 'accepted', 1)
          end
          hold(f[3], job, me, now + ttl)
        end
        for _, v in ipairs({job, f[2], f[3], f[4], w}) do table.insert(out, v) end
      end
    end
    redis.call('DEL', owned)
    -- its unbound leases are not renewed any more: they expire on their own
    redis.call('DEL', k('wleases', w))
  end
end
redis.call('ZREMRANGEBYSCORE', k('dead'), '-inf', now - keep)
return out
"""
)

#: ARGV: P, ms -> the pause's end, ms on the Redis clock (0 when ms <= 0 and no pause)
PAUSE = (
    _HEADER
    + """
local ms = tonumber(ARGV[2])
local now = now_ms()
local until_ms = tonumber(redis.call('GET', k('pause')) or '0')
if ms > 0 and now + ms > until_ms then
  until_ms = now + ms
  redis.call('SET', k('pause'), until_ms, 'PX', math.ceil(ms) + 1)
end
return math.max(0, until_ms - now)
"""
)

#: A GCRA over every process. ARGV: P, interval_ms, burst -> ms to wait (0: go now)
RATE = (
    _HEADER
    + """
local interval, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local pause = tonumber(redis.call('GET', k('pause')) or '0')
if pause > now then return math.ceil(pause - now) end
if interval <= 0 then return 0 end
local key = k('gcra')
local tat = math.max(tonumber(redis.call('GET', key) or '0'), now)
local tolerance = interval * (burst - 1)
if tat - now > tolerance then return math.max(1, math.ceil(tat - now - tolerance)) end
local new_tat = tat + interval
redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""
)
