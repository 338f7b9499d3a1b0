-- wrk script for scripts/bench: one non-streamed OpenAI chat completion per
-- request. The key comes from the environment (BENCH_KEY); the body can be
-- replaced with BENCH_BODY (e.g. for other models), or with the contents of
-- the file BENCH_BODY_FILE (an environment string stops at 128 KiB), and the
-- path is the URL's.
-- BENCH_VARY=1 makes every request's text unique ("Request T-N. " before
-- the first message's content), so that nothing a gateway remembers of a
-- text it saw (the guardrails' memo) answers for it.
wrk.method = "POST"
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
    local f = assert(io.open(body_file, "rb"))
    wrk.body = f:read("*a")
    f:close()
else
    wrk.body = os.getenv("BENCH_BODY")
        or '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'
end
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
end

local head, tail = wrk.body:match('^(.-"content":")(.*)$')
if os.getenv("BENCH_VARY") == "1" and head then
    local n, tag = 0, nil
    function request()
        if tag == nil then
            math.randomseed(os.time() + math.floor(os.clock() * 1e6))
            tag = math.random(1, 1000000000)
        end
        n = n + 1
        return wrk.format(nil, nil, nil, head .. "Request " .. tag .. "-" .. n .. ". " .. tail)
    end
end
