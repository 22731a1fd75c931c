import Redis

/// The library's Lua scripts. Each touches keys of one tenant only (one cluster slot).
enum Scripts {
    /// Idempotent and/or broadcasting append.
    ///
    /// KEYS[1] stream, KEYS[2] idempotency key (optional).
    /// ARGV[1] idempotency TTL ms, ARGV[2] channel ('' for none), ARGV[3] stream name,
    /// ARGV[4..] field/value pairs. Returns `{id, appended (1|0)}`.
    static let append = RedisScript(#"""
    local idem = KEYS[2]
    if idem then
      local first = redis.call('GET', idem)
      if first then return {first, 0} end
    end
    local fields = {}
    for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
    local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
    if idem then redis.call('SET', idem, id, 'PX', ARGV[1]) end
    if ARGV[2] ~= '' then
      local message = {id = id, stream = ARGV[3]}
      for i = 1, #fields, 2 do message[fields[i]] = fields[i + 1] end
      redis.call('PUBLISH', ARGV[2], cjson.encode(message))
    end
    return {id, 1}
    """#)

    /// The write of the domain services: idempotency, conditions on live paths, appends, live
    /// writes and publishes, all or nothing.
    ///
    /// KEYS[1] stream, KEYS[2] live hash, KEYS[3] live path index, KEYS[4] idempotency key (optional).
    /// ARGV[1] idempotency TTL ms, ARGV[2] channel ('' for none), ARGV[3] stream name, ARGV[4]
    /// live changes channel, ARGV[5] `realtime` to publish without appending (no ids, no
    /// idempotency record) or `stored`, then a count and that many conditions (kind, path, argument), a
    /// count and that many live writes (kind, path, value, extra, path as a JSON string), a
    /// count and that many events (field count, fields…, then the channel message's JSON after
    /// its `"id"` member). The live writes are published as one `LiveChange` message of puts.
    /// Returns `{'ok', id…}`, `{'repeat', first id, last id}` or `{'refused', condition number, current value or ''}`.
    static let appendEvents = RedisScript(#"""
    local idem = KEYS[4]
    if idem then
      local first = redis.call('GET', idem)
      if first then
        local space = string.find(first, ' ', 1, true)
        return {'repeat', string.sub(first, 1, space - 1), string.sub(first, space + 1)}
      end
    end
    local live, paths = KEYS[2], KEYS[3]
    local realtimeOnly = ARGV[5] == 'realtime'
    local i = 6
    local conditions = tonumber(ARGV[i]); i = i + 1
    for c = 1, conditions do
      local kind, path, arg = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
      local current = redis.call('HGET', live, path)
      local ok = false
      if kind == 'exists' then ok = current ~= false
      elseif kind == 'absent' then ok = current == false
      elseif kind == 'equals' then ok = current == arg
      elseif kind == 'oneof' then
        if current then
          for value in string.gmatch(arg, '[^\n]+') do if value == current then ok = true end end
        end
      elseif kind == 'nonneg' then
        local number = current and tonumber(current)
        ok = number ~= nil and number + tonumber(arg) >= 0
      end
      if not ok then return {'refused', c, current or ''} end
    end
    local writes = tonumber(ARGV[i]); i = i + 1
    local changes = {}
    for w = 1, writes do
      local kind, path, value, extra, quoted = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]; i = i + 5
      if kind == 'del' then
        redis.call('HDEL', live, path)
        redis.call('ZREM', paths, path)
        changes[#changes + 1] = '{"op":"put","path":' .. quoted .. ',"data":null}'
      else
        local write = true
        if kind == 'newer' then
          local current = redis.call('HGET', live, path)
          if current then
            local decoded, shown = pcall(cjson.decode, current)
            if decoded and type(shown) == 'table' and tonumber(shown.recordedAt) and tonumber(shown.recordedAt) > tonumber(extra) then write = false end
          end
        end
        if kind == 'incr' then
          value = redis.call('HINCRBYFLOAT', live, path, value)
        elseif write then
          redis.call('HSET', live, path, value)
        end
        redis.call('ZADD', paths, 0, path)
        if write then changes[#changes + 1] = '{"op":"put","path":' .. quoted .. ',"data":' .. value .. '}' end
      end
    end
    if #changes > 0 then redis.call('PUBLISH', ARGV[4], '{"changes":[' .. table.concat(changes, ',') .. ']}') end
    local count = tonumber(ARGV[i]); i = i + 1
    local reply = {'ok'}
    for e = 1, count do
      local n = tonumber(ARGV[i]); i = i + 1
      if realtimeOnly then
        -- Fanned out, never stored: the message has no id and no reader can resume to it.
        redis.call('PUBLISH', ARGV[2], '{' .. ARGV[i + n])
        i = i + n + 1
      else
      local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, i, i + n - 1))
      reply[#reply + 1] = id
      -- The channel message was encoded by the caller but for its id: concatenating beats
      -- building a table and cjson-encoding it for every event of a batch.
      if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], '{"id":"' .. id .. '",' .. ARGV[i + n]) end
      i = i + n + 1
      end
    end
    if idem and not realtimeOnly then redis.call('SET', idem, reply[2] .. ' ' .. reply[#reply], 'PX', ARGV[1]) end
    return reply
    """#)

    /// Trims by length and age, never below what a consumer group still needs.
    ///
    /// KEYS[1] stream, KEYS[2] meta. ARGV[1] max length override (0: use meta's),
    /// ARGV[2] most entries to inspect per call.
    /// A group needs its oldest pending entry and everything after its last-delivered id.
    /// Returns `{removed, wanted cut id or '', applied cut id or '', holding group or ''}`.
    static let trim = RedisScript(#"""
    local key = KEYS[1]
    if redis.call('EXISTS', key) == 0 then return {0, '', '', ''} end
    local function parse(id)
      local dash = string.find(id, '-', 1, true)
      if not dash then return tonumber(id), 0 end
      return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
    end
    local function less(a, b)
      local am, as = parse(a)
      local bm, bs = parse(b)
      return am < bm or (am == bm and as < bs)
    end
    local maxlen = tonumber(ARGV[1])
    if maxlen == 0 then maxlen = tonumber(redis.call('HGET', KEYS[2], 'max_length') or '0') end
    local retention = tonumber(redis.call('HGET', KEYS[2], 'retention_ms') or '0')
    local cut = nil
    local len = redis.call('XLEN', key)
    if maxlen > 0 and len > maxlen then
      local excess = math.min(len - maxlen, tonumber(ARGV[2]))
      local range = redis.call('XRANGE', key, '-', '+', 'COUNT', excess + 1)
      cut = range[#range][1]
    end
    if retention > 0 then
      local now = redis.call('TIME')
      local oldest = tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - retention) .. '-0'
      if cut == nil or less(cut, oldest) then cut = oldest end
    end
    if cut == nil then return {0, '', '', ''} end
    local applied = cut
    local holder = ''
    for _, group in ipairs(redis.call('XINFO', 'GROUPS', key)) do
      local name, pending, last
      for i = 1, #group, 2 do
        if group[i] == 'name' then name = group[i + 1]
        elseif group[i] == 'pending' then pending = group[i + 1]
        elseif group[i] == 'last-delivered-id' then last = group[i + 1] end
      end
      local need
      if pending > 0 then
        need = redis.call('XPENDING', key, name)[2]
      else
        local ms, seq = parse(last)
        need = string.format('%.0f-%.0f', ms, seq + 1)
      end
      if less(need, applied) then applied = need; holder = name end
    end
    local removed = redis.call('XTRIM', key, 'MINID', applied)
    return {removed, cut, applied, holder}
    """#)

    /// Moves a pending entry to the dead-letter stream and acknowledges it, atomically.
    ///
    /// KEYS[1] stream, KEYS[2] dead letters. ARGV: group, id, error, delivery count, consumer,
    /// stream name, failed-at time. Returns the dead letter's id, or false when the entry is no
    /// longer pending (another consumer acknowledged it).
    static let deadLetter = RedisScript(#"""
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
    if #pending == 0 then return false end
    local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
    local fields = '[]'
    if #entry > 0 and #entry[1][2] > 0 then fields = cjson.encode(entry[1][2]) end
    local id = redis.call('XADD', KEYS[2], '*',
      'origin_stream', ARGV[6], 'origin_id', ARGV[2], 'group', ARGV[1], 'consumer', ARGV[5],
      'error', ARGV[3], 'delivery_count', ARGV[4], 'failed_at', ARGV[7], 'fields', fields)
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
    return id
    """#)

    /// Appends a dead letter's original fields to its origin stream and deletes the dead letter.
    ///
    /// KEYS[1] dead letters, KEYS[2] origin stream. ARGV[1] dead letter id, ARGV[2] origin name.
    /// Returns the new id; errors when the dead letter is gone or holds no fields.
    static let redrive = RedisScript(#"""
    local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
    if #entry == 0 then return redis.error_reply('NOTFOUND dead letter ' .. ARGV[1] .. ' does not exist') end
    local origin, fields
    local flat = entry[1][2]
    for i = 1, #flat, 2 do
      if flat[i] == 'origin_stream' then origin = flat[i + 1]
      elseif flat[i] == 'fields' then fields = cjson.decode(flat[i + 1]) end
    end
    if origin ~= ARGV[2] then return redis.error_reply('MISMATCH dead letter belongs to ' .. tostring(origin)) end
    if fields == nil or #fields == 0 then
      return redis.error_reply('EMPTY dead letter ' .. ARGV[1] .. ' kept no fields (its entry was trimmed before it failed)')
    end
    local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
    redis.call('XDEL', KEYS[1], ARGV[1])
    return id
    """#)

    /// Takes, renews or releases a consumer-name lease.
    ///
    /// KEYS[1] lease. ARGV[1] token, ARGV[2] TTL ms (0 releases). Returns 1 when held by us.
    static let lease = RedisScript(#"""
    local holder = redis.call('GET', KEYS[1])
    if ARGV[2] == '0' then
      if holder == ARGV[1] then redis.call('DEL', KEYS[1]) end
      return 1
    end
    if holder and holder ~= ARGV[1] then return 0 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
    """#)
}
