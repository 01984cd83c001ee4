//! The Lua scripts of the Redis backend. The pick is the only one with logic: it mirrors
//! [`crate::pick::pick`] and its `why_not` step for step (the equivalence test runs both on the
//! same operations); the others are a compare-and-set, a token count and a lock, so every
//! state transition stays in Rust ([`crate::lifecycle`]).

use redis::Script;

/// One pick, atomically: cursor, entry records, minute windows and affinity binding in; the
/// choice out, the request admitted.
///
/// KEYS: 1 cursor (`sig|w1,w2,…`), 2 entry records (hash by credential), 3 minute windows (hash
/// by credential), 4 the affinity key (a never-written key when not sticky), 5 the client's
/// minute window (`minute:requests:tokens`; a never-written key when no client is admitted).
/// ARGV: 1 signature, 2 now, 3 n, 4 trial lease (≥ 1), 5 idle TTL, 6 window TTL, 7 affinity TTL
/// (empty: not sticky), then 7 per candidate from 8: credential, weight, tried (`1`), the
/// credential's state at now (`0` available, `r` rejected, else the quota's end), rpm, tpm
/// (empty: none), counted (`1`: the credential has limits in this pool); then, to admit a
/// client, `c`, its rpm and tpm (`0`: none), the requests it gives back (unused of its last
/// lease in this minute) and the lease it asks for (≥ 1); or, for a batch of picks made one
/// after the other in this call (no affinity, no client, nothing tried), `k` and their number.
/// Reply, five numbers per pick, the last the requests leased to the client (this one included;
/// 0 when none was admitted): `{0, index, trial, sticky_hit, g}`, `{1, retry_ms, 0, 0, g}` all
/// cooling, `{2, retry_ms, 0, 0, g}` all at capacity, `{3, 0, 0, 0, g}` all rejected,
/// `{4, 0, 0, 0, g}` exhausted, `{5, until_ms, 0, 0, 0}` the client's minute is full.
/// A lease is an eighth of what is left of the client's rpm (at least 1, at most what was asked):
/// small limits are counted request by request, large ones a share at a time.
const PICK: &str = r#"
local sig = ARGV[1]
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local sticky_ttl = tonumber(ARGV[7])
local minute = math.floor(now / 60000)
local function arg(i, f) return ARGV[7 + (i - 1) * 7 + f] end
local function fmt(x) return string.format('%.0f', x) end

local g = 0
local cf = ARGV[8 + n * 7]
local batch = 1
if cf == 'k' then
  batch = math.max(tonumber(ARGV[9 + n * 7]) or 1, 1)
  cf = nil
end
if cf then
  local crpm, ctpm = tonumber(ARGV[9 + n * 7]), tonumber(ARGV[10 + n * 7])
  local back, want = tonumber(ARGV[11 + n * 7]) or 0, tonumber(ARGV[12 + n * 7]) or 1
  local r, t = 0, 0
  local v = redis.call('GET', KEYS[5])
  if v then
    local m, vr, vt = string.match(v, '^(%d+):(%d+):(%d+)$')
    if m and tonumber(m) == minute then r, t = math.max(tonumber(vr) - back, 0), tonumber(vt) end
  end
  if (crpm > 0 and r >= crpm) or (ctpm > 0 and t >= ctpm) then
    if back > 0 then
      redis.call('SET', KEYS[5], fmt(minute) .. ':' .. fmt(r) .. ':' .. fmt(t), 'PX', ARGV[6])
    end
    return {5, (minute + 1) * 60000, 0, 0, 0}
  end
  g = math.max(want, 1)
  if crpm > 0 then g = math.max(1, math.min(g, math.floor((crpm - r) / 8))) end
  redis.call('SET', KEYS[5], fmt(minute) .. ':' .. fmt(r + g) .. ':' .. fmt(t), 'PX', ARGV[6])
end
if n == 0 then
  local out = {}
  for _ = 1, batch do for _, v in ipairs({4, 0, 0, 0, g}) do out[#out + 1] = v end end
  return out
end

local cur = {}
local reset = true
local stored = redis.call('GET', KEYS[1])
if stored then
  local s, rest = string.match(stored, '^([^|]*)|(.*)$')
  if s == sig then
    for v in string.gmatch(rest, '[^,]+') do cur[#cur + 1] = tonumber(v) or 0 end
    reset = false
  end
end
if #cur ~= n then
  cur = {}
  for i = 1, n do cur[i] = 0 end
  reset = true
end

local creds = {}
for i = 1, n do creds[i] = arg(i, 1) end
local recs = redis.call('HMGET', KEYS[2], unpack(creds))
-- Minute windows matter only to entries with an rpm or tpm (the others are never counted).
local limited = false
for i = 1, n do
  if arg(i, 5) ~= '' or arg(i, 6) ~= '' then limited = true break end
end
local wins = {}
if limited then wins = redis.call('HMGET', KEYS[3], unpack(creds)) end

-- circuit (kind, x, y): c; r/t open (until, step); h half-open (step, trial until)
local kind, cx, cy = {}, {}, {}
local req, tok = {}, {}
for i = 1, n do
  kind[i], cx[i], cy[i] = 'c', 0, 0
  local v = recs[i]
  if v then
    local k, x, y = string.match(v, '^([rth]):(%d+):(%d+)[|]')
    if not k then k, x, y = string.match(v, '^([rth]):(%d+):(%d+)$') end
    if k then
      x, y = tonumber(x), tonumber(y)
      local step = (k == 'h') and x or y
      if step <= 255 then kind[i], cx[i], cy[i] = k, x, y end
    end
  end
  req[i], tok[i] = 0, 0
  local w = wins[i]
  if w then
    local m, r, t = string.match(w, '^(%d+):(%d+):(%d+)$')
    if m and tonumber(m) == minute then req[i], tok[i] = tonumber(r), tonumber(t) end
  end
end

local function at(i)
  local k, x, y = kind[i], cx[i], cy[i]
  if (k == 'r' or k == 't') and x <= now then
    if y == 0 then return 'c', 0, 0 end
    return 'h', y, 0
  end
  if k == 'h' and y <= now then return 'h', x, 0 end
  return k, x, y
end

-- Each candidate's arguments, read once (a batch asks them at every pick).
local weight, out_of, rpm, tpm = {}, {}, {}, {}
for i = 1, n do
  weight[i] = math.max(tonumber(arg(i, 2)) or 1, 1)
  out_of[i] = arg(i, 3) == '1' or arg(i, 4) ~= '0'
  rpm[i], tpm[i] = tonumber(arg(i, 5)), tonumber(arg(i, 6))
end

local function full(i)
  return (rpm[i] ~= nil and req[i] >= rpm[i]) or (tpm[i] ~= nil and tok[i] >= tpm[i])
end

local function serves(i)
  if out_of[i] then return false end
  if kind[i] ~= 'c' then
    local k, _, y = at(i)
    if k == 'r' or k == 't' then return false end
    if k == 'h' and y ~= 0 then return false end
  end
  return not full(i)
end

-- One pick against the tables above, which it updates (cursor, trial, window) so that the
-- next pick of a batch sees what this one did.
local dirty = reset
local served = false
local function one()
  local hit = nil
  if sticky_ttl then
    local v = redis.call('GET', KEYS[4])
    if v then
      local c, exp = string.match(v, '^([^|]*)|(%d+)$')
      if c and tonumber(exp) > now then
        for i = 1, n do
          if arg(i, 1) == c and serves(i) then
            hit = i
            break
          end
        end
      end
    end
  end

  local best = nil
  if not hit then
    local total = 0
    for i = 1, n do
      if serves(i) then
        local w = weight[i]
        cur[i] = cur[i] + w
        total = total + w
        if not best or cur[i] > cur[best] then best = i end
      end
    end
    if best then
      cur[best] = cur[best] - total
      dirty = true
    end
  end

  local idx = hit or best
  if not idx then
    local untried, soonest, caponly = false, nil, true
    for i = 1, n do
      if arg(i, 3) ~= '1' then
        untried = true
        local cs = arg(i, 4)
        if cs ~= 'r' then
          local quota = nil
          if cs ~= '0' then quota = tonumber(cs) end
          local k, x, y = at(i)
          local circuit = nil
          if k == 'r' or k == 't' then
            circuit = x
          elseif k == 'h' and y ~= 0 then
            circuit = math.min(y, now + 1000)
          end
          local cap = nil
          if full(i) then cap = (minute + 1) * 60000 end
          if quota or circuit then caponly = false end
          local back = quota
          if circuit and (not back or circuit > back) then back = circuit end
          if cap and (not back or cap > back) then back = cap end
          if not back then back = now end
          if not soonest or back < soonest then soonest = back end
        end
      end
    end
    if not untried then return {4, 0, 0, 0, g} end
    if not soonest then return {3, 0, 0, 0, g} end
    local retry = math.max(soonest - now, 1)
    if caponly then return {2, retry, 0, 0, g} end
    return {1, retry, 0, 0, g}
  end

  served = true
  local cred = arg(idx, 1)
  if arg(idx, 7) == '1' then
    req[idx] = req[idx] + 1
    redis.call('HSET', KEYS[3], cred, fmt(minute) .. ':' .. fmt(req[idx]) .. ':' .. fmt(tok[idx]))
    redis.call('PEXPIRE', KEYS[3], ARGV[6])
  end
  local trial = 0
  local k, x, y = at(idx)
  if k == 'h' and y == 0 then
    local rest = string.match(recs[idx] or '', '([|].*)$') or '|'
    local v = 'h:' .. fmt(x) .. ':' .. fmt(now + lease) .. rest
    redis.call('HSET', KEYS[2], cred, v)
    recs[idx], kind[idx], cx[idx], cy[idx] = v, 'h', x, now + lease
    trial = 1
  end
  local sticky_hit = 0
  if hit then sticky_hit = 1 end
  if sticky_ttl then
    redis.call('SET', KEYS[4], cred .. '|' .. fmt(now + sticky_ttl), 'PX', math.max(sticky_ttl, 1))
  end
  return {0, idx - 1, trial, sticky_hit, g}
end

local out = one()
if batch > 1 then
  for _ = 2, batch do
    for _, v in ipairs(one()) do out[#out + 1] = v end
  end
end
if dirty then
  local parts = {}
  for i = 1, n do parts[i] = fmt(cur[i]) end
  redis.call('SET', KEYS[1], sig .. '|' .. table.concat(parts, ','), 'PX', ARGV[5])
end
if served then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return out
"#;

/// Writes a hash field only if it still holds what the caller read.
///
/// KEYS: 1 the hash. ARGV: 1 field, 2 `1` if it was present (else `0`), 3 the value read,
/// 4 the new value, 5 the hash's TTL. Reply: 1 written, 0 changed meanwhile.
const CAS: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if cur ~= ARGV[3] then return 0 end
elseif cur then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"#;

/// Counts a finished request's tokens in its credential's minute window.
///
/// KEYS: 1 the windows hash. ARGV: 1 credential, 2 minute, 3 tokens, 4 TTL.
const TOKENS: &str = r#"
local minute = tonumber(ARGV[2])
local r, t = 0, 0
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local m, vr, vt = string.match(v, '^(%d+):(%d+):(%d+)$')
  if m and tonumber(m) == minute then r, t = tonumber(vr), tonumber(vt) end
end
t = t + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. string.format('%.0f', r) .. ':' .. string.format('%.0f', t))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"#;

/// Admits a client's request unless its minute is full; counts it when admitted (the pick does
/// the same in its own call; this one serves requests that make no pick).
///
/// KEYS: 1 the client's window (`minute:requests:tokens`). ARGV: 1 minute, 2 rpm (0: none),
/// 3 tpm (0: none), 4 TTL. Reply: 1 admitted, 0 full.
const ADMIT: &str = r#"
local minute = tonumber(ARGV[1])
local r, t = 0, 0
local v = redis.call('GET', KEYS[1])
if v then
  local m, vr, vt = string.match(v, '^(%d+):(%d+):(%d+)$')
  if m and tonumber(m) == minute then r, t = tonumber(vr), tonumber(vt) end
end
local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
if (rpm > 0 and r >= rpm) or (tpm > 0 and t >= tpm) then return 0 end
r = r + 1
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%.0f', r) .. ':' .. string.format('%.0f', t), 'PX', ARGV[4])
return 1
"#;

/// Adds a client's finished requests' tokens to its minute window.
///
/// KEYS: 1 the client's window. ARGV: 1 minute, 2 tokens, 3 TTL.
const CLIENT_TOKENS: &str = r#"
local minute = tonumber(ARGV[1])
local r, t = 0, 0
local v = redis.call('GET', KEYS[1])
if v then
  local m, vr, vt = string.match(v, '^(%d+):(%d+):(%d+)$')
  if m and tonumber(m) == minute then r, t = tonumber(vr), tonumber(vt) end
end
t = t + tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%.0f', r) .. ':' .. string.format('%.0f', t), 'PX', ARGV[3])
return 1
"#;

/// Takes a lock when free, extends it when this replica holds it.
///
/// KEYS: 1 the lock. ARGV: 1 this replica's id, 2 TTL (≥ 1). Reply: 1 held, 0 held elsewhere.
const LEAD: &str = r#"
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

/// The scripts, hashed once (invoked by EVALSHA, loaded on first use).
pub struct Scripts {
    /// See [`PICK`].
    pub pick: Script,
    /// See [`CAS`].
    pub cas: Script,
    /// See [`TOKENS`].
    pub tokens: Script,
    /// See [`LEAD`].
    pub lead: Script,
    /// See [`ADMIT`].
    pub admit: Script,
    /// See [`CLIENT_TOKENS`].
    pub client_tokens: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            pick: Script::new(PICK),
            cas: Script::new(CAS),
            tokens: Script::new(TOKENS),
            lead: Script::new(LEAD),
            admit: Script::new(ADMIT),
            client_tokens: Script::new(CLIENT_TOKENS),
        }
    }
}
