-- redis-migration: a key's state as both sides of a comparison compute it (read-only).
--
-- The last three arguments of the script that includes it: "pexpiretime" (Redis 7+, exact) or
-- "pttl" (older: TIME + PTTL), MAX_ELEMENTS, MAX_STRING.
-- key_state(key) answers kind, expiry, digest:
--   kind    TYPE's answer ('none' when the key does not exist);
--   expiry  absolute, in unix milliseconds of this server's clock, -1 without a TTL;
--   digest  SHA-1 hex of the kind and a canonical content, '' when the key is larger than a
--           script should read at once (more than MAX_ELEMENTS elements, a string longer than
--           MAX_STRING bytes): the caller reads those in chunks. A module type gets '-' (its
--           type is compared, its content is not).
-- Canonical content (as redis_migration.data_digest v1, without the key name):
--   string: the value, a HyperLogLog without its 8 cached-cardinality bytes (PFCOUNT rewrites
--           them without changing the set); list: each element framed, in order; stream: each
--           entry's id and fields framed, in order; hash, set, sorted set: the XOR of the SHA-1
--           of each framed element (field+value, member, member+score as %.17g), which does not
--           depend on the order a server returns them in (and needs no locale-dependent sort).
-- frame(s) is '<length>:<s>', so concatenations cannot be ambiguous.
local call = redis.call
local sha1hex = redis.sha1hex
local bxor = bit.bxor
local EXACT_EXPIRY = ARGV[#ARGV - 2] == 'pexpiretime'
local MAX_ELEMENTS = tonumber(ARGV[#ARGV - 1])
local MAX_STRING = tonumber(ARGV[#ARGV])
local time = call('TIME')
local NOW = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local LENGTH = {list = 'LLEN', hash = 'HLEN', set = 'SCARD', zset = 'ZCARD', stream = 'XLEN'}

local function frame(s) return #s .. ':' .. s end

local function xor_hex(list, step, make)
    local a, b, c, d, e = 0, 0, 0, 0, 0
    for i = 1, #list, step do
        local h = sha1hex(make(list, i))
        a = bxor(a, tonumber(string.sub(h, 1, 8), 16))
        b = bxor(b, tonumber(string.sub(h, 9, 16), 16))
        c = bxor(c, tonumber(string.sub(h, 17, 24), 16))
        d = bxor(d, tonumber(string.sub(h, 25, 32), 16))
        e = bxor(e, tonumber(string.sub(h, 33, 40), 16))
    end
    return bit.tohex(a, 8) .. bit.tohex(b, 8) .. bit.tohex(c, 8) .. bit.tohex(d, 8) .. bit.tohex(e, 8)
end

local function hash_element(l, i) return frame(l[i]) .. frame(l[i + 1]) end
local function set_element(l, i) return frame(l[i]) end
local function zset_element(l, i) return frame(l[i]) .. frame(string.format('%.17g', tonumber(l[i + 1]))) end

local function key_state(key)
    local kind = call('TYPE', key)['ok']
    if kind == 'none' then return 'none', -1, '' end
    local expiry
    if EXACT_EXPIRY then
        expiry = call('PEXPIRETIME', key)
    else
        expiry = call('PTTL', key)
        if expiry >= 0 then expiry = NOW + expiry end
    end
    if expiry == -2 then return 'none', -1, '' end
    local body
    if kind == 'string' then
        -- GETRANGE's end is inclusive: a value longer than MAX_STRING comes back one byte longer.
        local v = call('GETRANGE', key, 0, MAX_STRING)
        if #v > MAX_STRING then return kind, expiry, '' end
        if #v >= 16 and string.sub(v, 1, 4) == 'HYLL' and string.byte(v, 5) <= 1
            and string.sub(v, 6, 8) == '\0\0\0' then
            v = string.sub(v, 1, 8) .. string.sub(v, 17)
        end
        body = frame(v)
    else
        local length = LENGTH[kind]
        if not length then return kind, expiry, '-' end
        if call(length, key) > MAX_ELEMENTS then return kind, expiry, '' end
        if kind == 'list' then
            local parts = call('LRANGE', key, 0, -1)
            for i = 1, #parts do parts[i] = frame(parts[i]) end
            body = table.concat(parts)
        elseif kind == 'hash' then
            body = xor_hex(call('HGETALL', key), 2, hash_element)
        elseif kind == 'set' then
            body = xor_hex(call('SMEMBERS', key), 1, set_element)
        elseif kind == 'zset' then
            body = xor_hex(call('ZRANGE', key, 0, -1, 'WITHSCORES'), 2, zset_element)
        else
            local parts = {}
            for i, entry in ipairs(call('XRANGE', key, '-', '+')) do
                local fields = entry[2]
                for j = 1, #fields do fields[j] = frame(fields[j]) end
                parts[i] = frame(entry[1]) .. #fields .. ':' .. table.concat(fields)
            end
            body = table.concat(parts)
        end
    end
    return kind, expiry, sha1hex(kind .. '\n' .. body)
end
