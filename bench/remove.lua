-- remove.lua - wrk script for bench/http: POST /v1/remove with one photo as
-- multipart/form-data (field image_file). The photo and the API key come from
-- the environment (BGR_BENCH_PHOTO, BGR_BENCH_KEY).
local f = assert(io.open(os.getenv("BGR_BENCH_PHOTO"), "rb"))
local img = f:read("*a")
f:close()
local boundary = "bgrbench5f0c9a"
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BGR_BENCH_KEY")
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n" ..
    "Content-Disposition: form-data; name=\"image_file\"; filename=\"photo\"\r\n" ..
    "Content-Type: application/octet-stream\r\n\r\n" .. img .. "\r\n--" .. boundary .. "--\r\n"
