-- redis-migration: one batch of the copy, read on the source (read-only: no write is ever called).
--
-- Answers the batch as the RESP-encoded commands to send to the target as they are:
--   RESTORE <key> <absolute expiry in ms, 0 for none> <DUMP payload> REPLACE ABSTTL
-- and, in keys mode, DEL <key> for a listed key the source no longer holds.
--
-- The script holds the source (a production primary) while it runs, so it bounds its own work:
-- a key's size is read (MEMORY USAGE, O(1): a few sampled elements) BEFORE its DUMP, and a large
-- key is only named, never dumped here; the batch stops dumping past a byte budget or a time
-- budget, naming the keys it did not reach (the caller copies them in follow-up batches).
--
-- ARGV[1] mode: "scan" (the keys of one SCAN call) or "keys" (the keys in ARGV[8..])
-- ARGV[2] SCAN cursor (scan mode)        ARGV[3] SCAN COUNT (scan mode)
-- ARGV[4] largest key put in the batch, in bytes (MEMORY USAGE before the DUMP, then the DUMP's
--         length): a larger key is named in the reply with its size, and copied apart
-- ARGV[5] bytes after which the batch stops dumping (the rest is named in the reply, deferred)
-- ARGV[6] "pexpiretime" (Redis 7+: the absolute expiry, exact) or "pttl" (older: TIME + PTTL)
-- ARGV[7] microseconds after which the batch stops dumping (0 or absent: no time budget); at
--         least one key is always dumped, so a batch always moves
-- Reply: {next cursor, commands, number of commands, keys gone, large keys, deferred keys,
--         payload bytes, microseconds spent, sizes of the large keys (MEMORY USAGE)}
local mode = ARGV[1]
local max_payload = tonumber(ARGV[4])
local max_bytes = tonumber(ARGV[5])
local budget_us = tonumber(ARGV[7] or '0') or 0
local first = 8
local keys, cursor
local call = redis.call
local started = call('TIME')
local started_us = tonumber(started[1]) * 1000000 + tonumber(started[2])
if mode == 'scan' then
    local reply = call('SCAN', ARGV[2], 'COUNT', ARGV[3])
    cursor, keys = reply[1], reply[2]
else
    cursor, keys = '0', {}
    for i = first, #ARGV do keys[#keys + 1] = ARGV[i] end
end
-- Expiries are absolute, so the copy's duration does not shorten a TTL.
local exact = ARGV[6] == 'pexpiretime'
local now = math.floor(started_us / 1000)
-- Lengths as strings, each converted once (Lua's number-to-string is a sprintf).
local NUMBERS = {}
local function num(n)
    local s = NUMBERS[n]
    if s == nil then
        s = tostring(n)
        NUMBERS[n] = s
    end
    return s
end
local function elapsed_us()
    local t = call('TIME')
    return tonumber(t[1]) * 1000000 + tonumber(t[2]) - started_us
end
local out, n, commands, bytes, gone = {}, 0, 0, 0, 0
local large, large_sizes, deferred = {}, {}, {}
local dumped = 0
local stopped = false
for i = 1, #keys do
    local key = keys[i]
    -- TIME costs about as much as a small key's DUMP: read the clock every 16 keys.
    if not stopped and dumped > 0 and budget_us > 0 and i % 16 == 0 and elapsed_us() >= budget_us then
        stopped = true
    end
    if stopped or bytes >= max_bytes then
        deferred[#deferred + 1] = key
    else
        -- ttl: -2 no key, -1 no expiry, else the absolute expiry in ms
        local ttl
        if exact then
            ttl = call('PEXPIRETIME', key)
        else
            ttl = call('PTTL', key)
            if ttl >= 0 then ttl = now + ttl end
        end
        local size = false
        if ttl ~= -2 then size = call('MEMORY', 'USAGE', key) end
        local dump = false
        if size and size <= max_payload then dump = call('DUMP', key) end
        if not size then
            gone = gone + 1
            if mode == 'keys' then
                out[n + 1] = '*2\r\n$3\r\nDEL\r\n$'
                out[n + 2] = num(#key)
                out[n + 3] = '\r\n'
                out[n + 4] = key
                out[n + 5] = '\r\n'
                n = n + 5
                commands = commands + 1
            end
        elseif not dump or #dump > max_payload then
            -- Large by its size before the DUMP (or, rarely, by its payload): copied apart.
            large[#large + 1] = key
            large_sizes[#large_sizes + 1] = size
        else
            dumped = dumped + 1
            local expiry = '0'
            if ttl >= 0 then expiry = string.format('%.0f', ttl) end
            out[n + 1] = '*6\r\n$7\r\nRESTORE\r\n$'
            out[n + 2] = num(#key)
            out[n + 3] = '\r\n'
            out[n + 4] = key
            out[n + 5] = '\r\n$'
            out[n + 6] = num(#expiry)
            out[n + 7] = '\r\n'
            out[n + 8] = expiry
            out[n + 9] = '\r\n$'
            out[n + 10] = num(#dump)
            out[n + 11] = '\r\n'
            out[n + 12] = dump
            out[n + 13] = '\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n'
            n = n + 13
            commands = commands + 1
            bytes = bytes + #dump + #key
        end
    end
end
return {cursor, table.concat(out), commands, gone, large, deferred, bytes, elapsed_us(), large_sizes}
