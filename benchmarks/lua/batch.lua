-- POST /v1/events:batch: `per_batch` unique events per request, built here in Lua.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")

function request()
   n = n + 1
   local items = {}
   for i = 1, per_batch do
      items[i] = event_json("-" .. i)
   end
   return wrk.format("POST", "/v1/events:batch", headers,
                     '{"events":[' .. table.concat(items, ",") .. ']}')
end
