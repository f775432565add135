-- POST signed provider callbacks to /v1/webhooks/<provider>, each once.
-- The callbacks are made ahead by the benchmark (wrk's Lua has no HMAC): one per line,
-- "<signature header value>\t<body>", and each thread takes every <threads>-th line.
--
-- Arguments after `--`: <file> <path> <signature header> <threads> [content type]
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "common.lua")

local lines = {}
local at = 0

function init(args)
   local stride = tonumber(args[4])
   local index = 0
   for line in io.lines(args[1]) do
      if index % stride == tid - 1 then
         table.insert(lines, line)
      end
      index = index + 1
   end
   path = args[2]
   header = args[3]
   content_type = args[5] or "application/json"
end

function request()
   at = at + 1
   local line = lines[(at - 1) % #lines + 1]
   local tab = string.find(line, "\t", 1, true)
   local headers = {["Content-Type"] = content_type}
   headers[header] = string.sub(line, 1, tab - 1)
   return wrk.format("POST", path, headers, string.sub(line, tab + 1))
end
