-- Public reads for bench/read_load.py: each request takes a random path from a file (one path a
-- line), so the load spreads over many URLs (nominees, pages, categories) as a crowd's does.
--   wrk ... -s bench/read_load.lua http://127.0.0.1:PORT -- paths.txt
local paths = {}

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
