-- wrk script for bench/run.py: replays requests prepared in a file, so floodgate's requests
-- can carry SigV4 signatures computed ahead of time (x-amz-content-sha256: UNSIGNED-PAYLOAD),
-- and nginx's go through exactly the same Lua path.
--
-- File: one request per line, tab-separated: METHOD, PATH, then "Name: value" headers.
-- Environment:
--   WRK_REQS       the file
--   WRK_MODE       "static": every request is the file's first line (wrk builds it once);
--                  "replay": each request is the next line of this thread's share, so every
--                  PUT goes to a new key (wraps around when the file runs out)
--   WRK_THREADS    wrk's -t, so each thread takes every WRK_THREADS-th line
--   WRK_BODY_SIZE  bytes of body sent with each request (0: none)

local file = os.getenv("WRK_REQS")
local mode = os.getenv("WRK_MODE") or "static"
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
local body_size = tonumber(os.getenv("WRK_BODY_SIZE") or "0")
local body = nil
if body_size > 0 then
   body = string.rep("b", body_size)
end

local counter = 0
function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

local function parse(line)
   local fields = {}
   for f in string.gmatch(line, "[^\t]+") do
      fields[#fields + 1] = f
   end
   local hdrs = {}
   for k = 3, #fields do
      local name, value = string.match(fields[k], "^([^:]+):%s*(.*)$")
      if name then
         hdrs[name] = value
      end
   end
   return fields[1], fields[2], hdrs
end

local methods, paths, headers = {}, {}, {}
local n, i = 0, 0

function init(args)
   local lineno = 0
   for line in io.lines(file) do
      if mode == "static" or lineno % nthreads == id then
         local m, p, h = parse(line)
         n = n + 1
         methods[n], paths[n], headers[n] = m, p, h
         if mode == "static" then
            break
         end
      end
      lineno = lineno + 1
   end
   if mode == "static" then
      wrk.method = methods[1]
      wrk.path = paths[1]
      for k, v in pairs(headers[1]) do
         wrk.headers[k] = v
      end
      wrk.body = body
   end
end

if mode == "replay" then
   function request()
      i = i + 1
      if i > n then
         i = 1
      end
      return wrk.format(methods[i], paths[i], headers[i], body)
   end
end
