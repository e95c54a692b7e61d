-- redis-migration: the state of keys on this server, plainly (read-only): for the copy back, which
-- compares each key with its state at the cutover in Python. (key_state.lua comes first.)
--
-- ARGV[1] mode: "scan" (ARGV[2] SCAN cursor, ARGV[3] COUNT) or "keys" (ARGV[2] how many keys
--         follow, ARGV[3] ... the keys)
-- then, last, the expiry command, MAX_ELEMENTS and MAX_STRING (see key_state.lua).
-- Reply: {next cursor, {key, kind, expiry, digest, key, ...}}. Scan mode leaves out a key gone
-- since SCAN; keys mode answers every key asked, 'none' for one that does not exist.
local mode = ARGV[1]
local keys, cursor
if mode == 'scan' then
    local reply = call('SCAN', ARGV[2], 'COUNT', ARGV[3])
    cursor, keys = reply[1], reply[2]
else
    cursor, keys = '0', {}
    for i = 1, tonumber(ARGV[2]) do
        keys[i] = ARGV[2 + i]
    end
end
local out, n = {}, 0
for i = 1, #keys do
    local key = keys[i]
    local kind, expiry, digest = key_state(key)
    if kind ~= 'none' or mode == 'keys' then
        out[n + 1] = key
        out[n + 2] = kind
        out[n + 3] = expiry
        out[n + 4] = digest
        n = n + 4
    end
end
return {cursor, out}
