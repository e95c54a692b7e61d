-- redis-migration: the state of one batch of keys, read on one side of a comparison (read-only).
-- (key_state.lua comes first.)
--
-- ARGV[1] mode: "scan" (the keys of one SCAN call) or "keys" (the keys packed in ARGV[2])
-- ARGV[2] SCAN cursor (scan mode) or the keys, a MessagePack array (keys mode)
-- ARGV[3] SCAN COUNT (scan mode)
-- ARGV[4] sampling threshold: a key is taken when the first 32 bits of SHA-1(salt .. key) are
--         below it; "all" takes every key       ARGV[5] the salt
-- ARGV[6] expiry command, ARGV[7] MAX_ELEMENTS, ARGV[8] MAX_STRING (see key_state.lua)
-- Reply: {next cursor, records (MessagePack: key, kind, expiry, digest, key, ...), keys scanned,
--         keys taken, microseconds spent}. A key gone since SCAN is left out in scan mode, kept as
--         'none' in keys mode. (The caller sizes the next SCAN COUNT from the time: the script
--         holds the source, a production primary, while it runs.)
local started = call('TIME')
local mode = ARGV[1]
local keys, cursor
if mode == 'scan' then
    local reply = call('SCAN', ARGV[2], 'COUNT', ARGV[3])
    cursor, keys = reply[1], reply[2]
else
    cursor, keys = '0', cmsgpack.unpack(ARGV[2])
end
local threshold = ARGV[4] ~= 'all' and tonumber(ARGV[4]) or nil
local salt = ARGV[5]
local out, n, taken = {}, 0, 0
for i = 1, #keys do
    local key = keys[i]
    if threshold == nil or tonumber(string.sub(sha1hex(salt .. key), 1, 8), 16) < threshold then
        local kind, expiry, digest = key_state(key)
        if kind ~= 'none' or mode == 'keys' then
            out[n + 1] = key
            out[n + 2] = kind
            out[n + 3] = expiry
            out[n + 4] = digest
            n = n + 4
            taken = taken + 1
        end
    end
end
local ended = call('TIME')
local spent = (tonumber(ended[1]) - tonumber(started[1])) * 1000000 + tonumber(ended[2]) - tonumber(started[2])
return {cursor, cmsgpack.pack(out), #keys, taken, spent}
