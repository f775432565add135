-- GET whatever path the URL names (e.g. /healthz), for the framework's floor.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")
