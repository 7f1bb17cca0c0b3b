-- One vote, decided and recorded atomically. Every key shares the campaign's hash tag, so on a
-- Redis Cluster the whole script runs on one shard.
--
-- KEYS[1]  meta      hash: phase, start_ms, end_ms, per_day, per_nominee, ip_soft, velocity_*
-- KEYS[2]  nominees  hash: number -> category code (approved nominees only)
-- KEYS[3]  frozen    hash: number -> frozen-until (ms)
-- KEYS[4]  quota     hash: "_t" -> the voter's votes today, number -> votes for that nominee,
--                    "~m" / "~c" -> the minute of the voter's last attempt and the attempts in it
-- KEYS[5]  idem      string: the first answer for this voter's Idempotency-Key
-- KEYS[6]  counts    hash: number -> valid votes
-- KEYS[7]  pending   hash: number -> pending votes
-- KEYS[8]  ledger    stream of every vote
-- KEYS[9]  seq       string: the campaign's vote sequence
-- KEYS[10] ipmin     string: vote attempts from this address in this minute
-- KEYS[11] pace      hash: number#slot -> minute*1e6 + votes, slot = minute % 11 (a ring: at
--                    most 11 fields per nominee)
-- KEYS[12] blocked   set: voters the committee blocked in this campaign
-- KEYS[13] rewinds   list: rewind events waiting to be recorded in the database
-- KEYS[14] rebuild   string: set while quotas must be rebuilt after a rewind
-- KEYS[15] pressure  string: this minute's attempts from this address by this browser (its
--                    signed device cookie), or by all browsers of the address without one
-- ARGV: now_ms, day, voter, ip, has_pass, voter_created_ms, minute, use_idem ('1' when the
--       request sent a key), ip_hard_per_minute, voter_hard_per_minute (0: no limit),
--       id_suffix (random), floor_epoch, floor_seq (the highest sequence this process saw
--       acknowledged in that campaign epoch; a lower sequence means this server lost
--       acknowledged votes), strict ('1' when the caller WAITs for replicas after the script),
--       rewind margin (a lifted sequence goes on this far above the floor), the nominee's
--       number, device, user agent, the request's idempotency key ('' when none: it travels
--       with the ledger entry)
-- Returns {'ok', answer, epoch, seq, lifted_from ('' unless the floor lifted the sequence)},
-- {'replay', answer}, {'err', code[, detail]} or {'sync'}.
--
-- Cost (bench.vote_path; bench.vote_script_ab compares versions): each redis.call costs 1.5 to
-- 2 µs inside Redis beyond the command itself, so the script reads each key once, writes each
-- hash with one command and sets a time to live only when a key is made. Numbers go to
-- redis.call as strings ('1', string.format('%d', n)): a Lua number is printed with
-- snprintf('%.17g') on every call. Arguments stay separate: one packed string split here cost
-- more than the arguments it saved, and packing the ledger entry's fields saved little.
local a = ARGV
local now = tonumber(a[1])
local day, voter, ip, has_pass, voter_created = a[2], a[3], a[4], a[5], a[6]
local use_idem = a[8] == '1'
-- tonumber (strtod) is among the script's dearer steps: a number is read only where it is used.
local ip_hard = a[9] ~= '0' and tonumber(a[9]) or 0
local voter_hard = a[10] ~= '0' and tonumber(a[10]) or 0
local id_suffix, floor_epoch = a[11], a[12]
local seq_floor = a[13] ~= '0' and tonumber(a[13]) or 0
local strict = a[14] == '1'
local number = a[16]

local meta = redis.call('HMGET', KEYS[1], 'phase', 'start_ms', 'end_ms', 'per_day',
  'per_nominee', 'ip_soft', 'velocity_factor', 'velocity_floor', 'freeze_seconds', 'id',
  'hide_from_ms', 'epoch')
if not meta[1] then
  return {'sync'}
end

if use_idem then
  local first = redis.call('GET', KEYS[5])
  if first then
    if strict then
      -- A write, so that the caller's WAIT covers everything before it: the replica then
      -- holds the vote this answer speaks of.
      redis.call('EXPIRE', KEYS[5], 86400)
    end
    return {'replay', first}
  end
end

if redis.call('SISMEMBER', KEYS[12], voter) == 1 then
  return {'err', 'voter_blocked'}
end

-- Hard limits: every attempt counts, accepted or not; past them the caller must wait. The
-- voter's attempts of this minute live in the voter's quota hash of the day (read once here,
-- written once below, with the vote when there is one).
local quota = redis.call('HMGET', KEYS[4], '_t', number, '~m', '~c')
local from_ip = redis.call('INCR', KEYS[10])
if from_ip == 1 then redis.call('EXPIRE', KEYS[10], '120') end
local by_voter = 1
if quota[3] == a[7] then
  by_voter = tonumber(quota[4] or '0') + 1
end
local quota_new = not (quota[1] or quota[3])

-- A refusal after this point still counts the attempt against the voter's minute.
local function refuse(code, detail)
  redis.call('HSET', KEYS[4], '~m', a[7], '~c', string.format('%d', by_voter))
  if quota_new then redis.call('EXPIRE', KEYS[4], '172800') end
  return {'err', code, detail}
end

if (ip_hard > 0 and from_ip > ip_hard) or (voter_hard > 0 and by_voter > voter_hard) then
  return refuse('rate_limited', tostring(60 - math.floor(now / 1000) % 60))
end

if meta[1] ~= 'voting' or now < tonumber(meta[2]) or now >= tonumber(meta[3]) then
  return refuse('voting_closed')
end

local category = redis.call('HGET', KEYS[2], number)
if not category then
  return refuse('nominee_not_found')
end

local frozen = redis.call('HGET', KEYS[3], number)
if frozen and tonumber(frozen) > now then
  return refuse('nominee_frozen', tostring(tonumber(frozen)))
end

local per_day = tonumber(meta[4])
local per_nominee = tonumber(meta[5])
local spent = tonumber(quota[1] or '0')
if spent >= per_day then
  return refuse('daily_quota_exhausted', '0')
end
local spent_here = tonumber(quota[2] or '0')
if spent_here >= per_nominee then
  return refuse('nominee_daily_limit', tostring(per_day - spent))
end

-- Pressure from one address: past the soft limit a vote needs a solved challenge. Each browser
-- holding the server's device cookie is counted apart (the phones behind a hospital's Wi-Fi or a
-- carrier's NAT are many browsers), the browsers without one together; new device cookies per
-- address are budgeted where they are issued. The hard limit above still counts the address.
local ip_soft = meta[6] and meta[6] ~= '0' and tonumber(meta[6]) or 0
if ip_soft > 0 and has_pass ~= '1' then
  local pressure = redis.call('INCR', KEYS[15])
  if pressure == 1 then redis.call('EXPIRE', KEYS[15], '120') end
  if pressure > ip_soft then
    return refuse('challenge_required')
  end
end

-- A nominee's pace: votes in this minute against its average over the previous ten. Each
-- nominee has a ring of 11 one-minute slots (slot = minute % 11); a slot holds the minute it
-- counts and its votes as minute * 1e6 + votes, and counts only for that minute (a slot a lap
-- behind, or missing, counts 0).
local status = 'valid'
local reason = ''
local velocity_factor = meta[7] and meta[7] ~= '0' and tonumber(meta[7]) or 0
local pace_field, pace_stamp, this_minute
if velocity_factor > 0 then
  local minute = tonumber(a[7])
  local slot = minute % 11
  -- One read: this minute's slot (field 1) and the ten before it. The slots' names are written
  -- out, so no number is printed per field.
  local names = {'#0', '#1', '#2', '#3', '#4', '#5', '#6', '#7', '#8', '#9', '#10'}
  local fields = {}
  for i = 0, 10 do
    fields[i + 1] = number .. names[(slot - i) % 11 + 1]
  end
  pace_field = fields[1]
  pace_stamp = minute * 1000000
  local history = redis.call('HMGET', KEYS[11], unpack(fields))
  -- A slot's votes are its value less the stamp of the minute asked for, when that leaves 0 to
  -- 999,999 (floor(value / 1e6) is that minute); otherwise the slot is a lap behind.
  this_minute = 0
  local total = 0
  for i = 1, 11 do
    local value = history[i]
    if value then
      local n = tonumber(value) - (pace_stamp - (i - 1) * 1000000)
      if n >= 0 and n < 1000000 then
        if i == 1 then this_minute = n else total = total + n end
      end
    end
  end
  local allowed = math.max(tonumber(meta[8] or '0'), velocity_factor * total / 10)
  if this_minute + 1 > allowed then
    status = 'pending'
    reason = 'velocity'
    local freeze = tonumber(meta[9] or '0')
    if freeze > 0 then
      redis.call('HSET', KEYS[3], number, tostring(now + freeze * 1000))
      redis.call('XADD', KEYS[8], '*', 'kind', 'freeze', 'n', number, 't', a[1],
        'until', tostring(now + freeze * 1000), 'minute_votes', tostring(this_minute + 1),
        'baseline', tostring(total / 10))
    end
  end
end

-- Never hand out again a number a voter already holds: after a failover that lost the tail of
-- the ledger, the sequence is lifted past it and the lost votes remain a gap in the numbering.
-- The sequence is taken first and checked after (the number before the increment is seq - 1).
local lifted = ''
local seq = redis.call('INCR', KEYS[9])
if seq_floor > 0 and meta[12] and floor_epoch == meta[12] and seq - 1 < seq_floor then
  -- This server lost votes this process acknowledged: go on past them plus the margin (other
  -- processes may have acknowledged more), record the event, and make the next votes wait (no
  -- meta) until the quotas are rebuilt.
  local current = seq - 1
  local target = seq_floor + (tonumber(a[15]) or 0)
  seq = target + 1
  redis.call('SET', KEYS[9], tostring(seq))
  lifted = tostring(current)
  redis.call('RPUSH', KEYS[13], cjson.encode({key = meta[10] .. '-' .. a[1] .. '-' .. id_suffix,
    at = now, by = 'vote', reason = 'rewound', from = current, known = seq_floor,
    to = target}))
  redis.call('SET', KEYS[14], '1')
  redis.call('DEL', KEYS[1])
end

-- The random part keeps ids unique even if Redis restarts from older data and the sequence
-- runs again over numbers already drained (the drain would otherwise skip a real vote).
local seq_text = string.format('%d', seq)
local vote_id = meta[10] .. '-' .. seq_text .. '-' .. id_suffix

redis.call('HSET', KEYS[4], '_t', string.format('%d', spent + 1),
  number, string.format('%d', spent_here + 1), '~m', a[7], '~c', string.format('%d', by_voter))
if quota_new then redis.call('EXPIRE', KEYS[4], '172800') end -- the voter's first attempt today
-- The pace hash lives while votes arrive: its life is renewed once per nominee and minute (at
-- the nominee's first vote of the minute), and it holds at most 11 fields per nominee however
-- long the campaign. Only the pace check above reads it, so a campaign without one does not
-- keep it.
if velocity_factor > 0 then
  redis.call('HSET', KEYS[11], pace_field, string.format('%d', pace_stamp + this_minute + 1))
  if this_minute == 0 then redis.call('EXPIRE', KEYS[11], '3600') end
end

-- The counters are the standings (voting.counts ranks them): no sorted set is kept beside them.
local votes
if status == 'valid' then
  votes = redis.call('HINCRBY', KEYS[6], number, '1')
else
  redis.call('HINCRBY', KEYS[7], number, '1')
  votes = tonumber(redis.call('HGET', KEYS[6], number) or '0')
end

redis.call('XADD', KEYS[8], '*', 'kind', 'vote', 'id', vote_id, 'seq', seq_text,
  'v', voter, 'n', number, 'c', category, 't', a[1], 'day', day, 'ip', ip,
  'dev', a[17], 'ua', a[18], 'st', status, 'why', reason, 'vc', voter_created,
  'ik', a[19])

-- While the campaign hides counts, the answer does not reveal them either. The answer is written
-- out here rather than by cjson.encode of a table (a little cheaper); a number with anything but
-- letters, digits and '-' in it, which would need escaping, still goes through cjson.
local hide_from = meta[11]
if hide_from and hide_from ~= '-1' and tonumber(hide_from) >= 0 and now >= tonumber(hide_from) then
  votes = cjson.null
end
local answer
if string.find(number, '[^%w%-]') then
  answer = cjson.encode({vote_id = vote_id, nominee = number, nominee_votes = votes,
    remaining_today = per_day - spent - 1, status = status})
else
  answer = '{"vote_id":"' .. vote_id .. '","nominee":"' .. number .. '","nominee_votes":'
    .. (votes == cjson.null and 'null' or string.format('%d', votes))
    .. ',"remaining_today":' .. string.format('%d', per_day - spent - 1)
    .. ',"status":"' .. status .. '"}'
end
if use_idem then
  redis.call('SET', KEYS[5], answer, 'EX', '86400')
end
return {'ok', answer, meta[12] or '', seq_text, lifted}
