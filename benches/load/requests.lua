-- wrk script: replays the requests of a file, one per line, in turn:
--   METHOD<TAB>PATH<TAB>BODY<TAB>Header: value<TAB>Header: value ...
-- (scripts/bench-access.sh writes it: a new token or delivery per request).
local lines = {}
local n = 0

function init(args)
  for line in io.lines(os.getenv("REQUESTS_FILE")) do
    local fields = {}
    for f in (line .. "\t"):gmatch("([^\t]*)\t") do
      table.insert(fields, f)
    end
    local headers = { ["CF-Connecting-IP"] = "192.0.2.9" }
    for i = 4, #fields do
      local name, value = fields[i]:match("^([^:]+):%s*(.*)$")
      if name then headers[name] = value end
    end
    local body = fields[3] ~= "" and fields[3] or nil
    table.insert(lines, wrk.format(fields[1], fields[2], headers, body))
  end
  -- Each thread starts at its own offset so threads do not send the same request.
  n = (tonumber(wrk.thread and wrk.thread:get("id") or 0) or 0) * 7919
end

function request()
  n = n + 1
  return lines[(n % #lines) + 1]
end
