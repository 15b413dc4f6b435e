-- wrk script for scripts/bench. Environment:
--   BENCH_METHOD (GET|POST), BENCH_BODY_BYTES (request body size for POST),
--   BENCH_JSON_BODY (a JSON request body, sent as application/json; optional),
--   BENCH_AUTH (value of the Authorization header, optional),
--   BENCH_ORIGIN (value of the Origin header, optional).
-- done() prints one JSON line prefixed with "BENCH_JSON " (latencies in microseconds).
local method = os.getenv("BENCH_METHOD") or "GET"
local body_bytes = tonumber(os.getenv("BENCH_BODY_BYTES") or "0")
local auth = os.getenv("BENCH_AUTH")
local origin = os.getenv("BENCH_ORIGIN")
local json_body = os.getenv("BENCH_JSON_BODY")

wrk.method = method
if body_bytes > 0 then
  wrk.body = string.rep("x", body_bytes)
  wrk.headers["Content-Type"] = "application/octet-stream"
end
if json_body and json_body ~= "" then
  wrk.body = json_body
  wrk.headers["Content-Type"] = "application/json"
end
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
if origin and origin ~= "" then
  wrk.headers["Origin"] = origin
end

-- No response() callback on purpose: it makes wrk copy every response into Lua.
-- Non-2xx/3xx responses are counted by wrk itself (summary.errors.status).

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
