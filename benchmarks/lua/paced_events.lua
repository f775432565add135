-- POST /v1/events at a fixed rate: wrk has no rate option, so delay() paces each thread.
-- Every request takes the next slot of the thread's schedule (one every 1000/rate ms, on a
-- monotonic clock read through LuaJIT's FFI); a connection whose answer came late finds its
-- slot already passed and sends at once, so the offered rate does not sag with latency as
-- long as the thread has enough connections.
--
-- Arguments after `--`: <api key> <run tag> <number of contacts> <requests/s per thread>
--                       <event type>
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } kaskad_bench_timespec;
int clock_gettime(int clock_id, kaskad_bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("kaskad_bench_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local common_init = init
local interval_ms = 4
local next_slot = nil

function init(args)
   common_init(args)
   interval_ms = 1000 / tonumber(args[4] or "250")
   event_type = args[5] or "bench.order"
end

function delay()
   local now = now_ms()
   if next_slot == nil then
      next_slot = now
   else
      next_slot = next_slot + interval_ms
   end
   local wait = next_slot - now
   if wait <= 0 then
      return 0
   end
   return math.floor(wait + 0.5)
end

function request()
   n = n + 1
   local body = string.format(
      '{"contact":"bench-%d","type":"%s","id":"%s-%d-%d","payload":{"n":%d}}',
      math.random(contacts), event_type, tag, tid, n, n)
   return wrk.format("POST", "/v1/events", headers, body)
end
