-- redis-migration: which of the keys packed in ARGV[1] (MessagePack) this server does not hold.
-- Read-only. Reply: the absent keys.
local absent = {}
for _, key in ipairs(cmsgpack.unpack(ARGV[1])) do
    if redis.call('EXISTS', key) == 0 then absent[#absent + 1] = key end
end
return absent
