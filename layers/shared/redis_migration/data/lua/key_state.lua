-- redis-migration: a key's state as both sides of a comparison compute it (read-only).
--
-- The last three arguments of the script that includes it: "pexpiretime" (Redis 7+, exact) or
-- "pttl" (older: TIME + PTTL), MAX_ELEMENTS, MAX_STRING.
-- key_state(key) answers kind, expiry, digest:
--   kind    TYPE's answer ('none' when the key does not exist);
--   expiry  absolute, in unix milliseconds of this server's clock, -1 without a TTL;
--   digest  see below; '' when the key is larger than a script should read at once (more than
--           MAX_ELEMENTS elements, a string longer than MAX_STRING bytes): the caller reads those
--           in chunks (redis_migration.data.compare.read_key_state computes the same digests).
--           A module type gets '-' (its type is compared, its content is not).
-- Digests (frame(s) is '<length>:<s>', so concatenations cannot be ambiguous):
--   string  '=' and the value when it has at most 40 bytes, else SHA-1 of 'string\n' frame(value);
--           a HyperLogLog without its 8 cached-cardinality bytes (PFCOUNT rewrites them).
--   list    SHA-1 of 'list\n' and each element framed, in order.
--   zset    SHA-1 of 'zset\n' and each member and score (the 8 bytes of the little-endian double:
--           servers print scores differently) framed, in ZRANGE's order (by score, then member
--           bytes: the same on every server).
--   stream  SHA-1 of 'stream\n' and each entry's id, field count and fields, in order.
--   hash, set in a compact encoding (listpack, ziplist, intset: the order DUMP and RESTORE keep):
--           'o' and the SHA-1 of the kind and each element framed, in the server's order;
--           otherwise the SHA-1 of the kind and the XOR of the first 64 bits of the SHA-1 of each
--           framed element (an order-free digest: a hash table's order depends on its history). When one side has an
--           'o' digest and the other not, the caller compares both in chunks, order-free. Never a
--           sort: string order in Lua follows the server's locale.
local call = redis.call
local sha1hex = redis.sha1hex
local bxor = bit.bxor
local EXACT_EXPIRY = ARGV[#ARGV - 2] == 'pexpiretime'
local MAX_ELEMENTS = tonumber(ARGV[#ARGV - 1])
local MAX_STRING = tonumber(ARGV[#ARGV])
local time = call('TIME')
local NOW = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local SHORT_STRING = 40
local LENGTH = {list = 'LLEN', hash = 'HLEN', set = 'SCARD', zset = 'ZCARD', stream = 'XLEN'}
local ORDERED = {listpack = true, ziplist = true, intset = true}

-- Lengths as strings, each converted once (Lua's number-to-string is a sprintf).
local NUMBERS = {}
local function num(n)
    local text = NUMBERS[n]
    if text == nil then
        text = tostring(n)
        NUMBERS[n] = text
    end
    return text
end

local function frame(s) return num(#s) .. ':' .. s end

-- The elements framed, concatenated: one string built once.
local function framed(list)
    local parts, n = {}, 0
    for i = 1, #list do
        local s = list[i]
        parts[n + 1] = num(#s)
        parts[n + 2] = ':'
        parts[n + 3] = s
        n = n + 3
    end
    return table.concat(parts)
end

-- The XOR of the first 64 bits of each element's SHA-1 (an element: one string, or two for a
-- hash's field and value), as 16 hex digits.
local function xor_hex(list, step)
    local a, b = 0, 0
    for i = 1, #list, step do
        local s = list[i]
        local h
        if step == 2 then
            local v = list[i + 1]
            h = sha1hex(num(#s) .. ':' .. s .. num(#v) .. ':' .. v)
        else
            h = sha1hex(num(#s) .. ':' .. s)
        end
        a = bxor(a, tonumber(string.sub(h, 1, 8), 16))
        b = bxor(b, tonumber(string.sub(h, 9, 16), 16))
    end
    return bit.tohex(a, 8) .. bit.tohex(b, 8)
end

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
    if kind == 'string' then
        -- GETRANGE's end is inclusive: a value longer than MAX_STRING comes back one byte longer.
        local v = call('GETRANGE', key, 0, MAX_STRING)
        if #v > MAX_STRING then return kind, expiry, '' end
        if #v >= 16 and string.sub(v, 1, 4) == 'HYLL' and string.byte(v, 5) <= 1
            and string.sub(v, 6, 8) == '\0\0\0' then
            v = string.sub(v, 1, 8) .. string.sub(v, 17)
        end
        -- A short value is its own digest (hashing it would cost a third of the comparison).
        if #v <= SHORT_STRING then return kind, expiry, '=' .. v end
        return kind, expiry, sha1hex('string\n' .. frame(v))
    end
    local length = LENGTH[kind]
    if not length then return kind, expiry, '-' end
    if call(length, key) > MAX_ELEMENTS then return kind, expiry, '' end
    if kind == 'list' then
        return kind, expiry, sha1hex('list\n' .. framed(call('LRANGE', key, 0, -1)))
    elseif kind == 'zset' then
        local flat = call('ZRANGE', key, 0, -1, 'WITHSCORES')
        -- A score as its 8 bytes (little-endian double): servers print scores differently.
        for i = 2, #flat, 2 do flat[i] = struct.pack('<d', tonumber(flat[i])) end
        return kind, expiry, sha1hex('zset\n' .. framed(flat))
    elseif kind == 'stream' then
        local parts = {}
        for i, entry in ipairs(call('XRANGE', key, '-', '+')) do
            parts[i] = frame(entry[1]) .. #entry[2] .. ':' .. framed(entry[2])
        end
        return kind, expiry, sha1hex('stream\n' .. table.concat(parts))
    end
    local elements = call(kind == 'hash' and 'HGETALL' or 'SMEMBERS', key)
    if ORDERED[call('OBJECT', 'ENCODING', key)] then
        return kind, expiry, 'o' .. sha1hex(kind .. '\n' .. framed(elements))
    end
    return kind, expiry, sha1hex(kind .. '\n' .. xor_hex(elements, kind == 'hash' and 2 or 1))
end
