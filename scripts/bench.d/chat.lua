-- wrk script for scripts/bench: one non-streamed OpenAI chat completion per
-- request. The key comes from the environment (BENCH_KEY); the body can be
-- replaced with BENCH_BODY (e.g. for other models) and the path is the URL's.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
    or '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
end
