-- redis-migration: the keys of one SCAN call, packed (MessagePack) for another server's script.
-- Read-only. ARGV[1] cursor, ARGV[2] COUNT. Reply: {next cursor, packed keys, how many}.
local reply = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
return {reply[1], cmsgpack.pack(reply[2]), #reply[2]}
