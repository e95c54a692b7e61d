-- redis-migration: compare one batch of the other side's records with this server (read-only).
-- (key_state.lua comes first.)
--
-- ARGV[1] the records digest_batch.lua answered on the other side (MessagePack)
-- ARGV[2] TTL tolerance in milliseconds
-- ARGV[3] how many differences to name (0: every one)
-- ARGV[4] expiry command, ARGV[5] MAX_ELEMENTS, ARGV[6] MAX_STRING (see key_state.lua)
-- Reply: {records checked, missing, type differs, value differs, TTL differs, expired on the
--         other side (gone here, as its TTL said), largest TTL drift in ms,
--         differences named {key, reason, ...}, keys to read in chunks (too large here or there)}
-- Reasons: missing, type, value, ttl, extra (here, but gone on the other side).
local records = cmsgpack.unpack(ARGV[1])
local tolerance = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local checked, missing, types, values, ttls, expired, drift = 0, 0, 0, 0, 0, 0, 0
local named, recheck = {}, {}
local function name(key, reason)
    if limit == 0 or #named < 2 * limit then
        named[#named + 1] = key
        named[#named + 1] = reason
    end
end
for i = 1, #records, 4 do
    local key, kind, expiry, digest = records[i], records[i + 1], records[i + 2], records[i + 3]
    local here_kind, here_expiry, here_digest = key_state(key)
    if kind == 'none' then
        if here_kind ~= 'none' then
            name(key, 'extra')
            checked = checked + 1
        end
    elseif here_kind == 'none' then
        if expiry ~= -1 and expiry <= NOW + tolerance then
            expired = expired + 1
        else
            missing = missing + 1
            checked = checked + 1
            name(key, 'missing')
        end
    elseif here_kind ~= kind then
        types = types + 1
        checked = checked + 1
        name(key, 'type')
    elseif digest == '' or here_digest == ''
        or (string.sub(digest, 1, 1) == 'o') ~= (string.sub(here_digest, 1, 1) == 'o') then
        -- Too large for a script on one side, or ordered here and order-free there (a compact
        -- encoding on one server only): the caller compares it in chunks, order-free.
        recheck[#recheck + 1] = key
    else
        checked = checked + 1
        if digest ~= here_digest then
            values = values + 1
            name(key, 'value')
        elseif (expiry == -1) ~= (here_expiry == -1) then
            ttls = ttls + 1
            name(key, 'ttl')
        elseif expiry ~= -1 then
            local d = math.abs(expiry - here_expiry)
            if d > drift then drift = d end
            if d > tolerance then
                ttls = ttls + 1
                name(key, 'ttl')
            end
        end
    end
end
return {checked, missing, types, values, ttls, expired, drift, named, recheck}
