-- wrk: a different X-Key on every request (many rate-limit buckets).
math.randomseed(os.time())
request = function()
  wrk.headers["X-Key"] = tostring(math.random(1, 1000000))
  return wrk.format("GET", "/many")
end
