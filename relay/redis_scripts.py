"""The Lua scripts that publish through Redis, each one atomic step per answer.

Both dedupe against what Redis holds (so whichever process publishes, a state is
sent once), XADD to the prediction's stream and PUBLISH the same fields, so
messages leave Redis in id order. The stream is bounded by count (MAXLEN) and
by bytes (a counter of what was added; past the bound the stream is cut to half
of its share). Pub/sub messages are "<prediction id>\\n<event id>\\n<fields as JSON>".

STATE is given a snapshot's whole log and stores only what changed: the log is
APPENDed once (relay:{id}:log) and the stream gets a `logs` delta (offset, text);
a snapshot entry follows only if the rest of the state changed, or the log was
rewritten (then it carries the new log's tail).
"""

from __future__ import annotations

__all__ = ["PUBLISH", "STATE"]

_COMMON = """
local added = 0
local out = {}
local function add(fields)
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
  local message = {}
  for i = 1, #fields, 2 do message[fields[i]] = fields[i + 1] end
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. '\\n' .. id .. '\\n' .. cjson.encode(message))
  for i = 1, #fields do added = added + #fields[i] end
  table.insert(out, id)
  return id
end
local function finish()
  if added == 0 then return out end
  local ttl = tonumber(ARGV[2])
  local total = redis.call('INCRBY', KEYS[8], added)
  if total > tonumber(ARGV[5]) then
    local length = redis.call('XLEN', KEYS[1])
    local keep = math.max(2, math.floor(length * tonumber(ARGV[5]) / total / 2))
    redis.call('XTRIM', KEYS[1], 'MAXLEN', keep)
    redis.call('SET', KEYS[8], math.floor(total * keep / length))
  end
  for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ttl) end
  return out
end
if redis.call('EXISTS', KEYS[5]) == 1 then return out end
"""

# KEYS: PredictionKeys.all(); ARGV: maxlen, ttl, channel, prediction id, max bytes, kind, data JSON, state
PUBLISH = _COMMON + """
local kind, data = ARGV[6], ARGV[7]
if kind == 'upstream' then
  local held = redis.call('GET', KEYS[4])
  if held == data or ((not held) and ARGV[8] == 'ok') then return out end
end
local id = add({'k', kind, 'd', data})
if kind == 'upstream' then redis.call('SET', KEYS[4], data)
elseif kind == 'done' then redis.call('SET', KEYS[5], id) end
return finish()
"""

# ARGV: maxlen, ttl, channel, prediction id, max bytes, state JSON (no log), log, its length
# in code points, the log's tail, the tail's offset
STATE = _COMMON + """
local core, log, length = ARGV[6], ARGV[7], ARGV[8]
local held = redis.call('GET', KEYS[6]) or ''
local rewritten = #log < #held or string.sub(log, 1, #held) ~= held
if rewritten then
  redis.call('SET', KEYS[6], log)
elseif #log > #held then
  local text = string.sub(log, #held + 1)
  add({'k', 'logs', 'o', redis.call('GET', KEYS[7]) or '0', 't', text})
  redis.call('APPEND', KEYS[6], text)
end
redis.call('SET', KEYS[7], length)
if rewritten or redis.call('GET', KEYS[2]) ~= core then
  local fields = {'k', 'snapshot', 'd', core, 'n', length}
  if rewritten then
    table.insert(fields, 't'); table.insert(fields, ARGV[9])
    table.insert(fields, 'o'); table.insert(fields, ARGV[10])
  end
  local id = add(fields)
  redis.call('SET', KEYS[2], core)
  redis.call('SET', KEYS[3], id)
end
return finish()
"""
