-- wrk script: every request is a vote by the next voter token from tokens.txt (distinct voters),
-- for the nominee that voter has not voted for yet. Counts 201s per thread.
local tokens = {}
local nominees = {}
local cursor = 0
local round = 0
local threads = {}
local thread_index = 0

function setup(thread)
  thread:set("index", thread_index)
  thread_index = thread_index + 1
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do table.insert(tokens, line) end
  for number in string.gmatch(args[2], "[^,]+") do table.insert(nominees, number) end
  -- each thread walks its own slice of voters, so no two threads vote as the same voter
  cursor = index * math.floor(#tokens / tonumber(args[3]))
  -- the bench's round (0, 1, ...): a voter votes for another nominee in each round (up to the
  -- campaign's 5 votes a day)
  round = tonumber(args[4] or "0")
  accepted, refused, errors = 0, 0, 0
end

function request()
  cursor = cursor + 1
  if cursor > #tokens then cursor = 1; round = round + 1 end
  local nominee = nominees[((cursor + round) % #nominees) + 1]
  return wrk.format("POST", wrk.path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[cursor],
    ["User-Agent"] = "Mozilla/5.0 (Linux; Android 12) MicroMessenger/8.0.40",
  }, '{"nominee":"' .. nominee .. '"}')
end

function response(status, headers, body)
  if status == 201 then accepted = accepted + 1
  elseif status < 500 then refused = refused + 1
  else errors = errors + 1 end
end

function done(summary, latency, requests)
  local a, r, e = 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("accepted")
    r = r + thread:get("refused")
    e = e + thread:get("errors")
  end
  io.write(string.format("ZUIMEI accepted=%d refused=%d errors=%d\n", a, r, e))
end
