-- account.lua - wrk script for bench/http's usage-exactness run: GET
-- /v1/account with the key from BGR_BENCH_KEY until the UNIX second given
-- as the script's argument, then only unauthenticated GET /healthz (not an
-- API call, not counted as usage). So when wrk stops, no counted request is
-- still in flight, and the authenticated 2xx answers wrk saw (told apart by
-- their X-RateLimit-Limit header) must equal what the server counted.
local cutoff, key
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    cutoff = tonumber(args[1])
    key = os.getenv("BGR_BENCH_KEY")
    counted, other = 0, 0
end

function request()
    if os.time() < cutoff then
        return wrk.format("GET", "/v1/account", {["Authorization"] = "Bearer " .. key})
    end
    return wrk.format("GET", "/healthz")
end

function response(status, headers, body)
    if headers["X-RateLimit-Limit"] and status >= 200 and status < 300 then
        counted = counted + 1
    elseif headers["X-RateLimit-Limit"] then
        other = other + 1
    end
end

function done(summary, latency, requests)
    local c, o = 0, 0
    for _, t in ipairs(threads) do
        c = c + t:get("counted")
        o = o + t:get("other")
    end
    io.write(string.format("account 2xx answers: %d (non-2xx: %d)\n", c, o))
end
