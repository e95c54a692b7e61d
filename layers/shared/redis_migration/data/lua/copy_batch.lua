-- redis-migration: one batch of the copy, read on the source (read-only: no write is ever called).
--
-- Answers the batch as the RESP-encoded commands to send to the target as they are:
--   RESTORE <key> <absolute expiry in ms, 0 for none> <DUMP payload> REPLACE ABSTTL
-- and, in keys mode, DEL <key> for a listed key the source no longer holds.
--
-- ARGV[1] mode: "scan" (the keys of one SCAN call) or "keys" (the keys in ARGV[7..])
-- ARGV[2] SCAN cursor (scan mode)        ARGV[3] SCAN COUNT (scan mode)
-- ARGV[4] largest payload put in the batch (a larger key is named in the reply, copied apart)
-- ARGV[5] bytes after which the batch stops dumping (the rest is named in the reply, deferred)
-- ARGV[6] "pexpiretime" (Redis 7+: the absolute expiry, exact) or "pttl" (older: TIME + PTTL)
-- Reply: {next cursor, commands, number of commands, keys gone, large keys, deferred keys, payload bytes}
local mode = ARGV[1]
local max_payload = tonumber(ARGV[4])
local max_bytes = tonumber(ARGV[5])
local keys, cursor
if mode == 'scan' then
    local reply = redis.call('SCAN', ARGV[2], 'COUNT', ARGV[3])
    cursor, keys = reply[1], reply[2]
else
    cursor, keys = '0', {}
    for i = 7, #ARGV do keys[#keys + 1] = ARGV[i] end
end
-- Expiries are absolute, so the copy's duration does not shorten a TTL.
local exact = ARGV[6] == 'pexpiretime'
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local call = redis.call
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
local out, n, commands, bytes, gone = {}, 0, 0, 0, 0
local large, deferred = {}, {}
for i = 1, #keys do
    local key = keys[i]
    if bytes >= max_bytes then
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
        local dump = false
        if ttl ~= -2 then dump = call('DUMP', key) end
        if not dump then
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
        elseif #dump > max_payload then
            large[#large + 1] = key
        else
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
return {cursor, table.concat(out), commands, gone, large, deferred, bytes}
