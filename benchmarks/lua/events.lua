-- POST /v1/events: one unique event per request, contacts spread over `contacts` ids.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")

function request()
   n = n + 1
   return wrk.format("POST", "/v1/events", headers, event_json(""))
end
