-- Shared by events.lua and batch.lua (loaded with dofile): thread ids, non-2xx counting
-- and one parseable result line printed by done().
--
-- Arguments after `--`: <api key> <run tag> <number of contacts> [events per batch]

local threads = {}
local next_tid = 0

function setup(thread)
   next_tid = next_tid + 1
   thread:set("tid", next_tid)
   table.insert(threads, thread)
end

-- Per thread (each thread has its own Lua state): globals so done() can read them.
non2xx = 0
first_error = nil
n = 0

function init(args)
   key = args[1]
   tag = args[2]
   contacts = tonumber(args[3] or "10000")
   per_batch = tonumber(args[4] or "1000")
   math.randomseed(tid * 7919 + os.time())
   headers = {
      ["Authorization"] = "Bearer " .. key,
      ["Content-Type"] = "application/json",
   }
end

-- A unique event id: run tag, thread id, request counter (and index within a batch).
function event_json(suffix)
   return string.format(
      '{"contact":"bench-%d","type":"bench.ping","id":"%s-%d-%d%s","payload":{"n":%d}}',
      math.random(contacts), tag, tid, n, suffix, n)
end

function response(status, hdrs, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_error == nil then
         first_error = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
end

function done(summary, latency, requests)
   local bad = 0
   local sample = nil
   for _, t in ipairs(threads) do
      bad = bad + (t:get("non2xx") or 0)
      sample = sample or t:get("first_error")
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d "
      .. "max_us=%d mean_us=%d non2xx=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, bad, e.connect, e.read, e.write, e.status, e.timeout))
   if sample ~= nil then
      io.write("BENCH_FIRST_ERROR " .. string.gsub(sample, "\n", " ") .. "\n")
   end
end
