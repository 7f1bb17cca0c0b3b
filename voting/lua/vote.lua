-- One vote, decided and recorded atomically. Every key shares the campaign's hash tag, so on a
-- Redis Cluster the whole script runs on one shard.
--
-- KEYS[1]  meta      hash: phase, start_ms, end_ms, per_day, per_nominee, ip_soft, velocity_*
-- KEYS[2]  nominees  hash: number -> category code (approved nominees only)
-- KEYS[3]  frozen    hash: number -> frozen-until (ms)
-- KEYS[4]  quota     hash: "_t" -> the voter's votes today, number -> votes for that nominee
-- KEYS[5]  idem      string: the first answer for this voter's Idempotency-Key
-- KEYS[6]  counts    hash: number -> valid votes
-- KEYS[7]  pending   hash: number -> pending votes
-- KEYS[8]  ledger    stream of every vote
-- KEYS[9]  seq       string: the campaign's vote sequence
-- KEYS[10] ipmin     string: vote attempts from this address in this minute
-- KEYS[11] velocity  hash: number:minute -> votes in that minute (the nominee's own pace)
-- KEYS[12] votermin  string: vote attempts by this voter in this minute
-- KEYS[13] blocked   set: voters the committee blocked in this campaign
-- KEYS[14] rewinds   list: rewind events waiting to be recorded in the database
-- KEYS[15] rebuild   string: set while quotas must be rebuilt after a rewind
-- ARGV: now_ms, day, voter, number, ip, device, user_agent, rank_prefix, has_pass,
--       voter_created_ms, minute, use_idem ('1' when the request sent a key),
--       ip_hard_per_minute, voter_hard_per_minute (0: no limit), id_suffix (random),
--       floor_epoch, floor_seq (the highest sequence this process saw acknowledged in that
--       campaign epoch; a lower sequence means this server lost acknowledged votes),
--       strict ('1' when the caller WAITs for replicas after the script),
--       idempotency key (the request's, '' when none: it travels with the ledger entry),
--       rewind margin (a lifted sequence goes on this far above the floor)
-- Returns {'ok', answer, epoch, seq, lifted_from ('' unless the floor lifted the sequence)},
-- {'replay', answer}, {'err', code[, detail]} or {'sync'}.
local now = tonumber(ARGV[1])
local voter = ARGV[3]
local number = ARGV[4]
local use_idem = ARGV[12] == '1'

local meta = redis.call('HMGET', KEYS[1], 'phase', 'start_ms', 'end_ms', 'per_day',
  'per_nominee', 'ip_soft', 'velocity_factor', 'velocity_floor', 'freeze_seconds', 'id',
  'hide_from_ms', 'epoch')
if not meta[1] then
  return {'sync'}
end

if use_idem then
  local first = redis.call('GET', KEYS[5])
  if first then
    if ARGV[18] == '1' then
      -- A write, so that the caller's WAIT covers everything before it: the replica then
      -- holds the vote this answer speaks of.
      redis.call('EXPIRE', KEYS[5], 86400)
    end
    return {'replay', first}
  end
end

if redis.call('SISMEMBER', KEYS[13], voter) == 1 then
  return {'err', 'voter_blocked'}
end

-- Hard limits: every attempt counts, accepted or not; past them the caller must wait.
local retry = tostring(60 - math.floor(now / 1000) % 60)
local from_ip = redis.call('INCR', KEYS[10])
if from_ip == 1 then redis.call('EXPIRE', KEYS[10], 120) end
local by_voter = redis.call('INCR', KEYS[12])
if by_voter == 1 then redis.call('EXPIRE', KEYS[12], 120) end
local ip_hard = tonumber(ARGV[13])
local voter_hard = tonumber(ARGV[14])
if (ip_hard > 0 and from_ip > ip_hard) or (voter_hard > 0 and by_voter > voter_hard) then
  return {'err', 'rate_limited', retry}
end

if meta[1] ~= 'voting' or now < tonumber(meta[2]) or now >= tonumber(meta[3]) then
  return {'err', 'voting_closed'}
end

local category = redis.call('HGET', KEYS[2], number)
if not category then
  return {'err', 'nominee_not_found'}
end

local frozen_until = tonumber(redis.call('HGET', KEYS[3], number) or '0')
if frozen_until > now then
  return {'err', 'nominee_frozen', tostring(frozen_until)}
end

local per_day = tonumber(meta[4])
local per_nominee = tonumber(meta[5])
local spent = tonumber(redis.call('HGET', KEYS[4], '_t') or '0')
if spent >= per_day then
  return {'err', 'daily_quota_exhausted', '0'}
end
local spent_here = tonumber(redis.call('HGET', KEYS[4], number) or '0')
if spent_here >= per_nominee then
  return {'err', 'nominee_daily_limit', tostring(per_day - spent)}
end

-- Pressure from one address: past the soft limit a vote needs a solved challenge.
local ip_soft = tonumber(meta[6] or '0')
if ip_soft > 0 and from_ip > ip_soft and ARGV[9] ~= '1' then
  return {'err', 'challenge_required'}
end

-- A nominee's pace: votes in this minute against its average over the previous ten.
local status = 'valid'
local reason = ''
local velocity_factor = tonumber(meta[7] or '0')
local minute = tonumber(ARGV[11])
if velocity_factor > 0 then
  local floor = tonumber(meta[8] or '0')
  local fields = {}
  for i = 1, 10 do
    fields[i] = number .. ':' .. tostring(minute - i)
  end
  local history = redis.call('HMGET', KEYS[11], unpack(fields))
  local total = 0
  for i = 1, 10 do
    total = total + tonumber(history[i] or '0')
  end
  local this_minute = tonumber(redis.call('HGET', KEYS[11], number .. ':' .. tostring(minute)) or '0')
  local allowed = math.max(floor, velocity_factor * total / 10)
  if this_minute + 1 > allowed then
    status = 'pending'
    reason = 'velocity'
    local freeze = tonumber(meta[9] or '0')
    if freeze > 0 then
      redis.call('HSET', KEYS[3], number, tostring(now + freeze * 1000))
      redis.call('XADD', KEYS[8], '*', 'kind', 'freeze', 'n', number, 't', ARGV[1],
        'until', tostring(now + freeze * 1000), 'minute_votes', tostring(this_minute + 1),
        'baseline', tostring(total / 10))
    end
  end
end

-- Never hand out again a number a voter already holds: after a failover that lost the tail of
-- the ledger, the sequence is lifted past it and the lost votes remain a gap in the numbering.
local lifted = ''
local seq_floor = tonumber(ARGV[17] or '0') or 0
if seq_floor > 0 and meta[12] and ARGV[16] == meta[12] then
  local current = tonumber(redis.call('GET', KEYS[9]) or '0')
  if current < seq_floor then
    -- This server lost votes this process acknowledged: go on past them plus the margin
    -- (other processes may have acknowledged more), record the event, and make the next
    -- votes wait (no meta) until the quotas are rebuilt.
    local target = seq_floor + tonumber(ARGV[20] or '0')
    redis.call('SET', KEYS[9], tostring(target))
    lifted = tostring(current)
    redis.call('RPUSH', KEYS[14], cjson.encode({key = meta[10] .. '-' .. ARGV[1] .. '-' ..
      ARGV[15], at = now, by = 'vote', reason = 'rewound', from = current, known = seq_floor,
      to = target}))
    redis.call('SET', KEYS[15], '1')
    redis.call('DEL', KEYS[1])
  end
end

local seq = redis.call('INCR', KEYS[9])
-- The random part keeps ids unique even if Redis restarts from older data and the sequence
-- runs again over numbers already drained (the drain would otherwise skip a real vote).
local vote_id = meta[10] .. '-' .. tostring(seq) .. '-' .. ARGV[15]

redis.call('HINCRBY', KEYS[4], '_t', 1)
redis.call('HINCRBY', KEYS[4], number, 1)
redis.call('EXPIRE', KEYS[4], 172800)
redis.call('HINCRBY', KEYS[11], number .. ':' .. tostring(minute), 1)
redis.call('EXPIRE', KEYS[11], 3600)

local votes
if status == 'valid' then
  votes = redis.call('HINCRBY', KEYS[6], number, 1)
  redis.call('ZINCRBY', ARGV[8] .. category, 1, number)
else
  redis.call('HINCRBY', KEYS[7], number, 1)
  votes = tonumber(redis.call('HGET', KEYS[6], number) or '0')
end

redis.call('XADD', KEYS[8], '*', 'kind', 'vote', 'id', vote_id, 'seq', tostring(seq),
  'v', voter, 'n', number, 'c', category, 't', ARGV[1], 'day', ARGV[2], 'ip', ARGV[5],
  'dev', ARGV[6], 'ua', ARGV[7], 'st', status, 'why', reason, 'vc', ARGV[10], 'ik', ARGV[19])

-- While the campaign hides counts, the answer does not reveal them either.
local hide_from = tonumber(meta[11] or '-1')
if hide_from >= 0 and now >= hide_from then
  votes = cjson.null
end
local answer = cjson.encode({vote_id = vote_id, nominee = number, nominee_votes = votes,
  remaining_today = per_day - spent - 1, status = status})
if use_idem then
  redis.call('SET', KEYS[5], answer, 'EX', 86400)
end
return {'ok', answer, meta[12] or '', tostring(seq), lifted}
