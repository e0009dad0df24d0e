-- Writes packed rows (the `packed` Redis layout; format in docs/internals.md, "Packed rows")
-- so that a newer event time wins and a partial row updates only the features it carries.
--
-- KEYS[i]         the Redis hash of entity i (serialized entity key ++ project); in Redis
--                 Cluster every key of one call must hash to the same slot
-- ARGV[1]         the hash field: the feature view's name
-- ARGV[2]         the view's feature count (rows are padded with nil up to it)
-- ARGV[3]         ttl in seconds: EXPIRE each written key; "" or "0" = no EXPIRE
-- ARGV[2i+2]      the new packed row for KEYS[i]
-- ARGV[2i+3]      its feature mask: "" = the row holds every feature and is written as is;
--                 otherwise the 0-based schema positions of the row's elements, in element
--                 order, comma-separated ("0,3,7"): the stored row keeps its other values
--
-- A row is accepted when no row is stored for the key, or its event time (bytes 2..9,
-- compared byte by byte) is strictly greater than the stored one; an equal or older event
-- time is skipped. A key given several times is handled in order against the row accepted
-- before it, so the newest row wins whatever the order. Every argument is checked, and every
-- merge computed, before the first write: an error reply means nothing was written.
-- Returns the number of rows accepted.
--
-- Elements are spliced as raw MessagePack bytes; no value is decoded into a Lua number, so
-- int64 values beyond 2^53 and float32/float64 distinctions survive a merge untouched.
local byte, sub, char, concat = string.byte, string.sub, string.char, table.concat

local field = ARGV[1]
local feature_count = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3]) or 0
if not feature_count or feature_count < 0 or feature_count % 1 ~= 0 then
  return redis.error_reply('packed_merge: feature count must be a whole number, got ' .. tostring(ARGV[2]))
end
if #ARGV ~= 3 + 2 * #KEYS then
  return redis.error_reply('packed_merge: expected ' .. (3 + 2 * #KEYS) .. ' arguments for '
    .. #KEYS .. ' keys, got ' .. #ARGV)
end

local function u16(s, pos)
  local a, b = byte(s, pos, pos + 1)
  if not b then error('truncated', 0) end
  return a * 256 + b
end

local function u32(s, pos)
  local a, b, c, d = byte(s, pos, pos + 3)
  if not d then error('truncated', 0) end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Fixed sizes (marker included) of the MessagePack markers 0xc0..0xd8 that carry no length.
local fixed = {
  [0xc0] = 1, [0xc2] = 1, [0xc3] = 1, [0xca] = 5, [0xcb] = 9, [0xcc] = 2, [0xcd] = 3,
  [0xce] = 5, [0xcf] = 9, [0xd0] = 2, [0xd1] = 3, [0xd2] = 5, [0xd3] = 9, [0xd4] = 3,
  [0xd5] = 4, [0xd6] = 6, [0xd7] = 10, [0xd8] = 18,
}

-- The position just past the MessagePack value that starts at `pos` (nested values included).
local function skip(s, pos)
  local pending = 1
  while pending > 0 do
    pending = pending - 1
    local b = byte(s, pos)
    if not b then error('truncated', 0) end
    if b <= 0x7f or b >= 0xe0 then pos = pos + 1
    elseif b <= 0x8f then pending = pending + 2 * (b - 0x80); pos = pos + 1
    elseif b <= 0x9f then pending = pending + (b - 0x90); pos = pos + 1
    elseif b <= 0xbf then pos = pos + 1 + (b - 0xa0)
    elseif fixed[b] then pos = pos + fixed[b]
    elseif b == 0xc4 or b == 0xd9 then pos = pos + 2 + (byte(s, pos + 1) or error('truncated', 0))
    elseif b == 0xc5 or b == 0xda then pos = pos + 3 + u16(s, pos + 1)
    elseif b == 0xc6 or b == 0xdb then pos = pos + 5 + u32(s, pos + 1)
    elseif b == 0xc7 then pos = pos + 3 + (byte(s, pos + 1) or error('truncated', 0))
    elseif b == 0xc8 then pos = pos + 4 + u16(s, pos + 1)
    elseif b == 0xc9 then pos = pos + 6 + u32(s, pos + 1)
    elseif b == 0xdc then pending = pending + u16(s, pos + 1); pos = pos + 3
    elseif b == 0xdd then pending = pending + u32(s, pos + 1); pos = pos + 5
    elseif b == 0xde then pending = pending + 2 * u16(s, pos + 1); pos = pos + 3
    elseif b == 0xdf then pending = pending + 2 * u32(s, pos + 1); pos = pos + 5
    else error(string.format('byte 0x%02x is not a MessagePack marker', b), 0) end
  end
  return pos
end

-- A packed row's elements as raw byte strings (checks the whole row).
local function elements(row)
  if #row < 10 then error('shorter than a row header', 0) end
  if byte(row, 1) ~= 1 then error(string.format('unknown format version 0x%02x', byte(row, 1)), 0) end
  local b, n, pos = byte(row, 10), nil, nil
  if b >= 0x90 and b <= 0x9f then n, pos = b - 0x90, 11
  elseif b == 0xdc then n, pos = u16(row, 11), 13
  elseif b == 0xdd then n, pos = u32(row, 11), 15
  else error('the features are not a MessagePack array', 0) end
  local out = {}
  for i = 1, n do
    local next_pos = skip(row, pos)
    if next_pos > #row + 1 then error('truncated', 0) end
    out[i] = sub(row, pos, next_pos - 1)
    pos = next_pos
  end
  if pos ~= #row + 1 then error((#row + 1 - pos) .. ' trailing bytes after the features', 0) end
  return out
end

local function array_header(n)
  if n < 16 then return char(0x90 + n) end
  if n < 65536 then return char(0xdc, math.floor(n / 256), n % 256) end
  return char(0xdd, math.floor(n / 16777216), math.floor(n / 65536) % 256,
    math.floor(n / 256) % 256, n % 256)
end

-- Whether row `a`'s event time is strictly after row `b`'s. Byte by byte: Lua's `<` on strings
-- uses the locale's collation, not byte order.
local function newer(a, b)
  for i = 2, 9 do
    local x, y = byte(a, i), byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end

-- 1. Check every argument. A full row is checked only for its header: the Rust encoder wrote
--    it, and it is stored as is.
local masks = {}
for i = 1, #KEYS do
  local row, mask = ARGV[2 * i + 2], ARGV[2 * i + 3]
  local ok, err = pcall(function()
    if mask == '' then
      if #row < 10 then error('shorter than a row header', 0) end
      if byte(row, 1) ~= 1 then error(string.format('unknown format version 0x%02x', byte(row, 1)), 0) end
      return
    end
    local positions, seen = {}, {}
    for p in string.gmatch(mask, '[^,]+') do
      local n = tonumber(p)
      if not n or n < 0 or n % 1 ~= 0 or n >= 4294967295 or seen[n] then
        error('bad feature mask "' .. mask .. '"', 0)
      end
      seen[n] = true
      positions[#positions + 1] = n + 1
    end
    local elems = elements(row)
    if #elems ~= #positions then
      error('the row holds ' .. #elems .. ' features but the mask names ' .. #positions, 0)
    end
    masks[i] = { positions = positions, elements = elems }
  end)
  if not ok then
    return redis.error_reply('packed_merge: new row ' .. i .. ' (key ' .. i .. '): ' .. err)
  end
end

-- 2. Compute the rows to write; `current` holds the latest row per key, stored or accepted.
local current, accepted, order, written = {}, 0, {}, {}
for i = 1, #KEYS do
  local key, row = KEYS[i], ARGV[2 * i + 2]
  local stored = current[key]
  if stored == nil then
    stored = redis.call('HGET', key, field) or false
    current[key] = stored
  end
  if stored and (#stored < 10 or byte(stored, 1) ~= 1) then
    return redis.error_reply('packed_merge: the stored row of key ' .. i
      .. ' is not a version 1 packed row; nothing was written')
  end
  if not stored or newer(row, stored) then
    local partial = masks[i]
    if partial then
      local values = {}
      local count = feature_count
      if stored then
        local ok, elems = pcall(elements, stored)
        if not ok then
          return redis.error_reply('packed_merge: the stored row of key ' .. i .. ' is corrupt ('
            .. elems .. '); nothing was written')
        end
        values = elems
        if #elems > count then count = #elems end
      end
      for k, pos in ipairs(partial.positions) do
        values[pos] = partial.elements[k]
        if pos > count then count = pos end
      end
      local pieces = { sub(row, 1, 9), array_header(count) }
      for j = 1, count do pieces[j + 2] = values[j] or '\192' end
      row = concat(pieces)
    end
    if not written[key] then
      written[key] = true
      order[#order + 1] = key
    end
    current[key] = row
    accepted = accepted + 1
  end
end

-- 3. Write the final row of every key that accepted one.
for _, key in ipairs(order) do
  redis.call('HSET', key, field, current[key])
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
return accepted
